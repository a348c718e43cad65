//! Golden images (`/golden-images`): the catalog of VM images Parallels Desktop offers users
//! (name, description, an image per architecture: URL and SHA-256), creating and editing
//! one, assigning it to groups, verifying it (downloads that take minutes: the page shows
//! their progress, polled by htmx) and deleting it. The rules are `service::golden_images`'s
//! and delivery `profiles::golden_images`'s, as for `/api/v1/golden-images`.

use super::form::{self, FieldRefusal};
use super::page::{Chrome, ConsoleError, Nav, Notice, refusal, render, render_with};
use super::session::Console;
use crate::http::{AdminError, AppState};
use crate::service::golden_image_input::Arch;
use crate::service::golden_images::{
    ArchVerification, GoldenImage, GoldenImageChange, ImageInput, NewGoldenImage, UrlWarning,
    VerifyEvent, url_warnings,
};
use crate::store::golden_images::GoldenImageRecord;
use askama::Template;
use axum::Router;
use axum::extract::{Extension, Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/golden-images", get(list).post(create))
        .route("/golden-images/{name}", get(show).post(change))
        .route("/golden-images/{name}/groups", post(assign))
        .route("/golden-images/{name}/groups/remove", post(unassign))
        .route("/golden-images/{name}/verify", post(verify))
        .route("/golden-images/{name}/verify/{job}", get(verify_progress))
        .route("/golden-images/{name}/delete", post(delete))
        .layer(Extension(Arc::new(Verifies::default())))
}

/// The fields a refusal can name (the service names them first: `intel.url: …`).
const FIELDS: &[&str] = &[
    "name",
    "description",
    "apple_silicon.url",
    "apple_silicon.sha256",
    "intel.url",
    "intel.sha256",
];

/// Verifies kept to show: the running ones and the last finished.
const KEPT_VERIFIES: usize = 32;

/// Verifies started from the console, by job id, while they run and a little after: their
/// progress is only worth showing while someone watches (the outcome itself is audited,
/// `golden_image.verify`), so it lives in memory and goes with a restart.
#[derive(Default)]
struct Verifies {
    jobs: Mutex<HashMap<String, Job>>,
}

#[derive(Clone, Default)]
struct Job {
    image: String,
    seq: u64,
    /// Bytes so far (and the total when the server said) per architecture.
    progress: BTreeMap<&'static str, (u64, Option<u64>)>,
    results: Vec<ArchVerification>,
    /// `Some(Ok(all matched))` when done, `Some(Err(why))` when the verify itself failed.
    outcome: Option<Result<bool, String>>,
}

impl Verifies {
    fn start(&self, image: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let seq = jobs.values().map(|j| j.seq).max().unwrap_or(0) + 1;
        // Forget the oldest finished verifies beyond the few kept.
        while jobs.len() >= KEPT_VERIFIES {
            let oldest = jobs
                .iter()
                .filter(|(_, j)| j.outcome.is_some())
                .min_by_key(|(_, j)| j.seq)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => jobs.remove(&k),
                None => break,
            };
        }
        jobs.insert(
            id.clone(),
            Job {
                image: image.to_string(),
                seq,
                ..Job::default()
            },
        );
        id
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Job)) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = jobs.get_mut(id) {
            f(job);
        }
    }

    fn get(&self, id: &str) -> Option<Job> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.get(id).cloned()
    }
}

fn arch_label(key: &str) -> &'static str {
    match key {
        "apple_silicon" => "Apple silicon",
        "intel" => "Intel",
        _ => "?",
    }
}

/// "1.5 MiB".
fn size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes as f64 >= MIB * 1024.0 {
        format!("{:.2} GiB", bytes as f64 / MIB / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB)
    }
}

struct ProgressRow {
    arch: &'static str,
    done: String,
    /// `<progress>`'s value and max, when the total is known.
    value: u64,
    max: Option<u64>,
}

struct ResultRow {
    arch: &'static str,
    matched: bool,
    detail: String,
}

/// The verify section: the button, or a verify under way (polling), or its outcome.
struct VerifyView {
    /// `/golden-images/{name}`, encoded.
    base: String,
    job: Option<String>,
    running: bool,
    progress: Vec<ProgressRow>,
    results: Vec<ResultRow>,
    outcome: Option<String>,
    ok: bool,
}

fn verify_view(base: &str, job: Option<(&str, &Job)>) -> VerifyView {
    let Some((id, job)) = job else {
        return VerifyView {
            base: base.to_string(),
            job: None,
            running: false,
            progress: Vec::new(),
            results: Vec::new(),
            outcome: None,
            ok: false,
        };
    };
    let finished: Vec<&str> = job.results.iter().map(|r| r.architecture).collect();
    VerifyView {
        base: base.to_string(),
        job: Some(id.to_string()),
        running: job.outcome.is_none(),
        progress: job
            .progress
            .iter()
            .filter(|(a, _)| !finished.contains(a))
            .map(|(a, (bytes, total))| ProgressRow {
                arch: arch_label(a),
                done: match total {
                    Some(t) => format!("{} of {}", size(*bytes), size(*t)),
                    None => size(*bytes),
                },
                value: *bytes,
                max: *total,
            })
            .collect(),
        results: job
            .results
            .iter()
            .map(|r| ResultRow {
                arch: arch_label(r.architecture),
                matched: r.matched,
                detail: match (&r.error, &r.actual) {
                    (Some(e), _) => format!("download failed: {e}"),
                    (None, Some(_)) if r.matched => {
                        format!("SHA-256 matches ({} in {:.1} s)", size(r.bytes), r.seconds)
                    }
                    (None, Some(a)) => format!("SHA-256 differs: expected {}, got {a}", r.expected),
                    (None, None) => "no answer".into(),
                },
            })
            .collect(),
        ok: matches!(job.outcome, Some(Ok(true))),
        outcome: job.outcome.as_ref().map(|o| match o {
            Ok(true) => format!("Every image of {} matches its SHA-256.", job.image),
            Ok(false) => format!("{} does not verify: see above.", job.image),
            Err(e) => format!("The verify failed: {e}"),
        }),
    }
}

#[derive(Template)]
#[template(path = "golden_image_verify.html")]
struct VerifyFragment {
    verify: VerifyView,
    may_verify: bool,
}

/// What the create and edit forms hold.
#[derive(Deserialize, Default)]
struct ImageForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    apple_silicon_url: String,
    #[serde(default)]
    apple_silicon_sha256: String,
    #[serde(default)]
    intel_url: String,
    #[serde(default)]
    intel_sha256: String,
    /// The HEAD check of new URLs (a checkbox: absent is off).
    check_urls: Option<String>,
}

impl ImageForm {
    fn of(r: &GoldenImageRecord) -> ImageForm {
        ImageForm {
            name: r.name.clone(),
            description: r.description.clone().unwrap_or_default(),
            apple_silicon_url: r.apple_silicon_url.clone().unwrap_or_default(),
            apple_silicon_sha256: r.apple_silicon_sha256.clone().unwrap_or_default(),
            intel_url: r.intel_url.clone().unwrap_or_default(),
            intel_sha256: r.intel_sha256.clone().unwrap_or_default(),
            check_urls: Some("on".into()),
        }
    }

    /// An architecture's image as given: none when both its fields are blank.
    fn image(url: &str, sha256: &str) -> Option<ImageInput> {
        (!url.trim().is_empty() || !sha256.trim().is_empty()).then(|| ImageInput {
            url: url.to_string(),
            sha256: sha256.to_string(),
        })
    }

    fn apple_silicon(&self) -> Option<ImageInput> {
        Self::image(&self.apple_silicon_url, &self.apple_silicon_sha256)
    }

    fn intel(&self) -> Option<ImageInput> {
        Self::image(&self.intel_url, &self.intel_sha256)
    }
}

struct ImageRow {
    name: String,
    href: String,
    description: String,
    apple_silicon: String,
    intel: String,
    groups: String,
}

fn image_row(g: &GoldenImage) -> ImageRow {
    let r = &g.record;
    ImageRow {
        href: format!("/golden-images/{}", form::segment(&r.name)),
        name: r.name.clone(),
        description: r.description.clone().unwrap_or_default(),
        apple_silicon: r.apple_silicon_url.clone().unwrap_or_default(),
        intel: r.intel_url.clone().unwrap_or_default(),
        groups: g.groups.join(", "),
    }
}

#[derive(Template)]
#[template(path = "golden_images.html")]
struct ImagesPage {
    chrome: Chrome,
    images: Vec<ImageRow>,
    f: ImageForm,
    refusal: Option<FieldRefusal>,
}

impl ImagesPage {
    fn error(&self, field: &str) -> Option<String> {
        form::error_on(&self.refusal, field)
    }
}

async fn list_page(
    state: &AppState,
    console: &Console,
    notice: Option<Notice>,
    f: ImageForm,
    refusal: Option<FieldRefusal>,
) -> Result<Response, ConsoleError> {
    let images = state.service.golden_images().await?;
    let status = refusal.as_ref().map(|r| r.status).unwrap_or(StatusCode::OK);
    render_with(
        status,
        &ImagesPage {
            chrome: Chrome::new(console, Nav::GoldenImages, "Golden images").with_notice(notice),
            images: images.iter().map(image_row).collect(),
            f,
            refusal,
        },
    )
}

async fn list(State(state): State<AppState>, console: Console) -> Result<Response, ConsoleError> {
    let f = ImageForm {
        check_urls: Some("on".into()),
        ..ImageForm::default()
    };
    list_page(&state, &console, None, f, None).await
}

/// The HEAD check's warnings as a notice (advice: the image is stored all the same).
fn warned(done: String, warnings: &[UrlWarning]) -> Option<Notice> {
    if warnings.is_empty() {
        return Notice::done(done);
    }
    let w: Vec<String> = warnings
        .iter()
        .map(|w| format!("{} {}: {}", arch_label(w.architecture), w.url, w.warning))
        .collect();
    Notice::refused(format!("{done} But check the URLs: {}.", w.join("; ")))
}

async fn create(
    State(state): State<AppState>,
    console: Console,
    Form(f): Form<ImageForm>,
) -> Result<Response, ConsoleError> {
    let new = NewGoldenImage {
        name: f.name.clone(),
        description: Some(f.description.clone()),
        apple_silicon: f.apple_silicon(),
        intel: f.intel(),
    };
    match state
        .profiles
        .create_golden_image(new, console.name())
        .await
    {
        Ok(image) => {
            let warnings = if f.check_urls.is_some() {
                url_warnings(&image.record, None).await
            } else {
                Vec::new()
            };
            let notice = warned(
                format!("Golden image {} created.", image.record.name),
                &warnings,
            );
            image_page(
                &state,
                &console,
                image,
                notice,
                None,
                None,
                StatusCode::CREATED,
            )
            .await
        }
        Err(e) => {
            let r = FieldRefusal::new(refusal(AdminError::from(e)), FIELDS, "apple_silicon.url");
            list_page(&state, &console, None, f, Some(r)).await
        }
    }
}

#[derive(Template)]
#[template(path = "golden_image.html")]
struct ImagePage {
    chrome: Chrome,
    name: String,
    base: String,
    f: ImageForm,
    refusal: Option<FieldRefusal>,
    groups: Vec<(String, String)>,
    /// Groups it may be assigned to.
    free_groups: Vec<String>,
    group_error: Option<String>,
    verify: VerifyView,
    updated: String,
}

impl ImagePage {
    fn error(&self, field: &str) -> Option<String> {
        form::error_on(&self.refusal, field)
    }
}

#[allow(clippy::too_many_arguments)]
async fn image_page(
    state: &AppState,
    console: &Console,
    image: GoldenImage,
    notice: Option<Notice>,
    edit: Option<(ImageForm, FieldRefusal)>,
    group_error: Option<(StatusCode, String)>,
    status: StatusCode,
) -> Result<Response, ConsoleError> {
    let r = &image.record;
    let base = format!("/golden-images/{}", form::segment(&r.name));
    // A group holds at most one image: offer the groups that hold none.
    let held: Vec<String> = state
        .service
        .golden_images()
        .await?
        .into_iter()
        .flat_map(|g| g.groups)
        .collect();
    let free_groups = state
        .service
        .groups()
        .await?
        .into_iter()
        .map(|g| g.record.name)
        .filter(|g| !held.contains(g))
        .collect();
    let (f, refusal) = match edit {
        Some((f, r)) => (f, Some(r)),
        None => (ImageForm::of(r), None),
    };
    let status = refusal
        .as_ref()
        .map(|r| r.status)
        .or(group_error.as_ref().map(|e| e.0))
        .unwrap_or(status);
    render_with(
        status,
        &ImagePage {
            chrome: Chrome::new(
                console,
                Nav::GoldenImages,
                format!("Golden image {}", r.name),
            )
            .with_notice(notice),
            name: r.name.clone(),
            groups: image
                .groups
                .iter()
                .map(|g| (g.clone(), format!("/groups/{}", form::segment(g))))
                .collect(),
            free_groups,
            group_error: group_error.map(|e| e.1),
            verify: verify_view(&base, None),
            updated: format!(
                "{} by {}",
                crate::timefmt::rfc3339(r.updated_at),
                r.updated_by
            ),
            base,
            f,
            refusal,
        },
    )
}

async fn show(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let image = state.service.golden_image(&name).await?;
    image_page(&state, &console, image, None, None, None, StatusCode::OK).await
}

/// What changed between the record and the edit form: only that is sent (an unchanged image
/// is no new version for the Macs).
fn change_of(before: &GoldenImageRecord, f: &ImageForm) -> GoldenImageChange {
    let arch = |url: &Option<String>, sha: &Option<String>, given: Option<ImageInput>| {
        let now = (
            url.clone().unwrap_or_default(),
            sha.clone().unwrap_or_default(),
        );
        match given {
            None if url.is_none() => None,
            None => Some(None),
            Some(g) if (g.url.trim(), g.sha256.trim()) == (now.0.as_str(), now.1.as_str()) => None,
            Some(g) => Some(Some(g)),
        }
    };
    let description = f.description.trim();
    GoldenImageChange {
        description: (description != before.description.as_deref().unwrap_or(""))
            .then(|| Some(description.to_string()).filter(|d| !d.is_empty())),
        apple_silicon: arch(
            &before.apple_silicon_url,
            &before.apple_silicon_sha256,
            f.apple_silicon(),
        ),
        intel: arch(&before.intel_url, &before.intel_sha256, f.intel()),
    }
}

async fn change(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(f): Form<ImageForm>,
) -> Result<Response, ConsoleError> {
    let before = state.service.golden_image(&name).await?;
    let change = change_of(&before.record, &f);
    match state
        .profiles
        .change_golden_image(&name, change, console.name())
        .await
    {
        Ok(image) => {
            let warnings = if f.check_urls.is_some() {
                url_warnings(&image.record, Some(&before.record)).await
            } else {
                Vec::new()
            };
            let notice = warned(
                format!("Golden image {} saved.", image.record.name),
                &warnings,
            );
            image_page(&state, &console, image, notice, None, None, StatusCode::OK).await
        }
        Err(e) => {
            let r = FieldRefusal::new(refusal(AdminError::from(e)), FIELDS, "apple_silicon.url");
            let mut f = f;
            f.name = before.record.name.clone();
            image_page(
                &state,
                &console,
                before,
                None,
                Some((f, r)),
                None,
                StatusCode::OK,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct GroupForm {
    group: String,
}

async fn assign(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(g): Form<GroupForm>,
) -> Result<Response, ConsoleError> {
    let groups = vec![g.group.clone()];
    match state
        .profiles
        .assign_golden_image(&name, &groups, console.name())
        .await
    {
        Ok(c) => {
            let notice = Notice::done(format!(
                "{} assigned to {}: its Macs get it now.",
                c.image.record.name, g.group
            ));
            image_page(
                &state,
                &console,
                c.image,
                notice,
                None,
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            let image = state.service.golden_image(&name).await?;
            let r = refusal(AdminError::from(e));
            image_page(&state, &console, image, None, None, Some(r), StatusCode::OK).await
        }
    }
}

async fn unassign(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(g): Form<GroupForm>,
) -> Result<Response, ConsoleError> {
    let c = state
        .profiles
        .unassign_golden_image(&name, std::slice::from_ref(&g.group), console.name())
        .await
        .map_err(AdminError::from)?;
    let notice = Notice::done(format!(
        "{} unassigned from {}.",
        c.image.record.name, g.group
    ));
    image_page(
        &state,
        &console,
        c.image,
        notice,
        None,
        None,
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
struct DeleteForm {
    /// The "I understand" checkbox: deleting is irreversible.
    confirm: Option<String>,
}

async fn delete(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    Form(d): Form<DeleteForm>,
) -> Result<Response, ConsoleError> {
    match state
        .profiles
        .delete_golden_image(&name, d.confirm.is_some(), console.name())
        .await
    {
        Ok(freed) => {
            let also = if freed.is_empty() {
                String::new()
            } else {
                format!(" Groups left without a golden image: {}.", freed.join(", "))
            };
            let notice = Notice::done(format!("Golden image {name} deleted.{also}"));
            let f = ImageForm {
                check_urls: Some("on".into()),
                ..ImageForm::default()
            };
            list_page(&state, &console, notice, f, None).await
        }
        Err(e) => {
            let image = state.service.golden_image(&name).await?;
            let (status, message) = refusal(AdminError::from(e));
            image_page(
                &state,
                &console,
                image,
                Notice::refused(message),
                None,
                None,
                status,
            )
            .await
        }
    }
}

/// Start a verify in its own task (it ends, and is audited, whoever watches) and answer with
/// the page whose verify section polls its progress.
async fn verify(
    State(state): State<AppState>,
    Extension(verifies): Extension<Arc<Verifies>>,
    console: Console,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let image = state.service.golden_image(&name).await?;
    let image_name = image.record.name.clone();
    let id = verifies.start(&image_name);
    let service = state.service.clone();
    let actor = console.name().to_string();
    let (jobs, job) = (verifies.clone(), id.clone());
    tokio::spawn(async move {
        let events = (jobs.clone(), job.clone());
        let outcome = service
            .verify_golden_image(&image_name, &actor, move |event| {
                events.0.update(&events.1, |j| match event {
                    VerifyEvent::Progress { arch, progress } => {
                        j.progress
                            .insert(arch_key(arch), (progress.bytes, progress.total));
                    }
                    VerifyEvent::Result(r) => j.results.push(r),
                })
            })
            .await;
        jobs.update(&job, |j| {
            j.outcome = Some(match outcome {
                Ok(results) => Ok(results.iter().all(|r| r.matched)),
                Err(e) => Err(AdminError::from(e).public_message()),
            })
        });
    });
    let base = format!("/golden-images/{}", form::segment(&image.record.name));
    let job = verifies.get(&id).unwrap_or_default();
    render_with(
        StatusCode::ACCEPTED,
        &VerifyFragment {
            verify: verify_view(&base, Some((&id, &job))),
            may_verify: Chrome::new(&console, Nav::GoldenImages, "").may.profiles,
        },
    )
}

fn arch_key(a: Arch) -> &'static str {
    a.key()
}

async fn verify_progress(
    State(state): State<AppState>,
    Extension(verifies): Extension<Arc<Verifies>>,
    console: Console,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let image = state.service.golden_image(&name).await?;
    let job = verifies
        .get(&id)
        .filter(|j| j.image == image.record.name)
        .ok_or_else(|| ConsoleError::NotFound(format!("no verify {id} of {name} under way")))?;
    let base = format!("/golden-images/{}", form::segment(&image.record.name));
    render(&VerifyFragment {
        verify: verify_view(&base, Some((&id, &job))),
        may_verify: Chrome::new(&console, Nav::GoldenImages, "").may.profiles,
    })
}
