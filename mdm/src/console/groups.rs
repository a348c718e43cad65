//! Groups (`/groups`): the list (static and smart, with member counts), creating one, and a
//! group's page: its members (add and remove by serial number or UDID), what it is given
//! (profiles, golden image, OS update, Parallels Desktop activation) and deleting it. The
//! rules are `service::groups`'s, as for `/api/v1/groups`.

use super::form::{self, FieldRefusal};
use super::page::{Chrome, ConsoleError, Nav, Notice, refusal, render, render_with};
use super::session::Console;
use crate::http::{AdminError, AppState};
use crate::service::ServiceError;
use crate::service::groups::{GroupDetails, GroupInfo, NewGroup};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list).post(create))
        .route("/groups/{name}", get(show))
        .route("/groups/{name}/devices", post(add))
        .route("/groups/{name}/devices/remove", post(remove))
        .route("/groups/{name}/delete", post(delete))
}

/// The fields of the create form a refusal can name.
const CREATE_FIELDS: &[&str] = &["name", "description", "filter"];

/// A row of the list.
struct GroupRow {
    name: String,
    href: String,
    smart: bool,
    members: usize,
    /// The filter (smart) or the description.
    about: String,
}

fn row(g: &GroupInfo) -> GroupRow {
    let r = &g.record;
    GroupRow {
        href: format!("/groups/{}", form::segment(&r.name)),
        name: r.name.clone(),
        smart: g.record.filter.is_some(),
        members: g.member_count,
        about: r
            .filter
            .clone()
            .or_else(|| r.description.clone())
            .unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    chrome: Chrome,
    groups: Vec<GroupRow>,
    /// What the create form holds (given back after a refusal).
    name: String,
    description: String,
    filter: String,
    name_error: Option<String>,
    description_error: Option<String>,
    filter_error: Option<String>,
}

impl GroupsPage {
    fn new(chrome: Chrome, groups: &[GroupInfo]) -> GroupsPage {
        GroupsPage {
            chrome,
            groups: groups.iter().map(row).collect(),
            name: String::new(),
            description: String::new(),
            filter: String::new(),
            name_error: None,
            description_error: None,
            filter_error: None,
        }
    }
}

async fn list(State(state): State<AppState>, console: Console) -> Result<Response, ConsoleError> {
    let groups = state.service.groups().await?;
    render(&GroupsPage::new(
        Chrome::new(&console, Nav::Groups, "Groups"),
        &groups,
    ))
}

#[derive(Deserialize)]
struct CreateForm {
    name: String,
    description: Option<String>,
    filter: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    console: Console,
    Form(f): Form<CreateForm>,
) -> Result<Response, ConsoleError> {
    let new = NewGroup {
        name: f.name.clone(),
        description: form::given(&f.description),
        filter: form::given(&f.filter),
    };
    match state.service.create_group(new, console.name()).await {
        Ok(details) => {
            let notice = Notice::done(format!("Group {} created.", details.info.record.name));
            group_page(&state, &console, details, notice, StatusCode::CREATED).await
        }
        Err(e) => {
            // The filter language's refusal says where in the filter, not which field.
            let filter = matches!(e, ServiceError::InvalidFilter(_));
            let mut r = FieldRefusal::new(refusal(e), CREATE_FIELDS, "name");
            if filter {
                r.field = "filter";
            }
            let r = Some(r);
            let groups = state.service.groups().await?;
            let mut page = GroupsPage::new(Chrome::new(&console, Nav::Groups, "Groups"), &groups);
            page.name = f.name;
            page.description = f.description.unwrap_or_default();
            page.filter = f.filter.unwrap_or_default();
            page.name_error = form::error_on(&r, "name");
            page.description_error = form::error_on(&r, "description");
            page.filter_error = form::error_on(&r, "filter");
            render_with(
                r.map(|r| r.status).unwrap_or(StatusCode::BAD_REQUEST),
                &page,
            )
        }
    }
}

/// A member of the group's page.
struct MemberRow {
    label: String,
    serial: String,
    udid: String,
    /// `/devices/{udid}`, for a member that names a device.
    href: Option<String>,
    /// What to name it by to remove it.
    key: String,
    pending: bool,
}

/// A link to something the group is given.
struct Given {
    label: String,
    href: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage {
    chrome: Chrome,
    name: String,
    /// `/groups/{name}`, encoded.
    base: String,
    smart: bool,
    filter: String,
    description: String,
    member_count: usize,
    members: Vec<MemberRow>,
    profiles: Vec<Given>,
    golden_image: Option<Given>,
    os_update: Option<Given>,
    activation: Option<Given>,
    devices: String,
    devices_error: Option<String>,
}

async fn group_page(
    state: &AppState,
    console: &Console,
    details: GroupDetails,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<Response, ConsoleError> {
    let page = group_view(state, console, details, notice).await?;
    render_with(status, &page)
}

async fn group_view(
    state: &AppState,
    console: &Console,
    details: GroupDetails,
    notice: Option<Notice>,
) -> Result<GroupPage, ConsoleError> {
    let r = &details.info.record;
    let name = r.name.clone();
    let base = format!("/groups/{}", form::segment(&name));
    let members = details
        .members
        .iter()
        .map(|m| {
            let udid = m.udid.clone().unwrap_or_default();
            MemberRow {
                label: m
                    .device_name
                    .clone()
                    .or_else(|| m.serial.clone())
                    .or_else(|| m.udid.clone())
                    .unwrap_or_default(),
                serial: m.serial.clone().unwrap_or_default(),
                href: (!m.pending && !udid.is_empty())
                    .then(|| format!("/devices/{}", form::segment(&udid))),
                key: m
                    .udid
                    .clone()
                    .or_else(|| m.serial.clone())
                    .unwrap_or_default(),
                udid,
                pending: m.pending,
            }
        })
        .collect();
    let profiles = state
        .profiles
        .group_profiles(&name)
        .await
        .map_err(AdminError::from)?
        .into_iter()
        .map(|p| Given {
            href: format!("/profiles/{}", form::segment(&p.identifier)),
            detail: format!("version {}, {}", p.latest_version, p.identifier),
            label: p.name,
        })
        .collect();
    let golden_image = state
        .service
        .golden_images()
        .await?
        .into_iter()
        .find(|g| g.groups.contains(&name))
        .map(|g| Given {
            href: format!("/golden-images/{}", form::segment(&g.record.name)),
            detail: g.record.description.clone().unwrap_or_default(),
            label: g.record.name,
        });
    let os_update = state
        .ddm
        .os_updates()
        .await?
        .into_iter()
        .find(|u| u.record.group_name == name)
        .map(|u| {
            let r = u.record;
            let build = r
                .target_build_version
                .map(|b| format!(" ({b})"))
                .unwrap_or_default();
            Given {
                label: format!("macOS {}{build}", r.target_os_version),
                href: "/os-updates".into(),
                detail: format!("by {}", r.deadline),
            }
        });
    let activation = match state.service.parallels_activation(&name).await {
        Ok(a) => Some(Given {
            label: a.experience.as_str().to_string(),
            href: String::new(),
            detail: a
                .hint
                .map(|h| format!("license key …{h}"))
                .unwrap_or_default(),
        }),
        Err(ServiceError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    Ok(GroupPage {
        chrome: Chrome::new(console, Nav::Groups, format!("Group {name}")).with_notice(notice),
        smart: r.filter.is_some(),
        filter: r.filter.clone().unwrap_or_default(),
        description: r.description.clone().unwrap_or_default(),
        member_count: details.info.member_count,
        members,
        profiles,
        golden_image,
        os_update,
        activation,
        devices: String::new(),
        devices_error: None,
        name,
        base,
    })
}

async fn show(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let details = state.service.group(&name).await?;
    group_page(&state, &console, details, None, StatusCode::OK).await
}

#[derive(Deserialize)]
struct DevicesForm {
    /// Serial numbers or UDIDs, one per line or separated by commas.
    devices: String,
}

async fn add(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(f): Form<DevicesForm>,
) -> Result<Response, ConsoleError> {
    let devices = form::device_list(&f.devices);
    match state
        .service
        .add_group_devices(&name, &devices, console.name())
        .await
    {
        Ok(change) => {
            let notice = membership_notice(
                "Added",
                &change.changed,
                "already members",
                &change.unchanged,
            );
            group_page(&state, &console, change.details, notice, StatusCode::OK).await
        }
        Err(e) => {
            let (status, message) = refusal(e);
            // No such group: its own error page (no form to show the reason beside).
            let details = state.service.group(&name).await?;
            let mut page = group_view(&state, &console, details, None).await?;
            page.devices = f.devices;
            page.devices_error = Some(message);
            render_with(status, &page)
        }
    }
}

#[derive(Deserialize)]
struct RemoveForm {
    device: String,
}

async fn remove(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(f): Form<RemoveForm>,
) -> Result<Response, ConsoleError> {
    let change = state
        .service
        .remove_group_devices(&name, std::slice::from_ref(&f.device), console.name())
        .await?;
    let notice = membership_notice("Removed", &change.changed, "not members", &change.unchanged);
    group_page(&state, &console, change.details, notice, StatusCode::OK).await
}

/// "Added C02X, C02Y. Already members: C02Z."
fn membership_notice(
    done: &str,
    changed: &[String],
    same: &str,
    unchanged: &[String],
) -> Option<Notice> {
    let mut text = if changed.is_empty() {
        format!("{done} nothing.")
    } else {
        format!("{done} {}.", changed.join(", "))
    };
    if !unchanged.is_empty() {
        text.push_str(&format!(
            " {}{}: {}.",
            same[..1].to_uppercase(),
            &same[1..],
            unchanged.join(", ")
        ));
    }
    Notice::done(text)
}

async fn delete(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    state.service.delete_group(&name, console.name()).await?;
    let groups = state.service.groups().await?;
    let chrome = Chrome::new(&console, Nav::Groups, "Groups")
        .with_notice(Notice::done(format!("Group {name} deleted.")));
    render(&GroupsPage::new(chrome, &groups))
}
