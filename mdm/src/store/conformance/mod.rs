//! One `Store` test suite, run against every backend.
//!
//! Each case is an `async fn(&dyn Store)` in the module of its feature area; `conformance!`
//! instantiates it for SQLite (a fresh temp file) and for PostgreSQL (a fresh database per
//! test, dropped afterwards; see `crate::testing` for which server), as `sqlite::<case>` and
//! `postgres::<case>`. With `RUSSET_TEST_SKIP_POSTGRES=1` the PostgreSQL cases are compiled as
//! ignored (`cfg(russet_skip_postgres)`, set by `build.rs`).

pub(super) mod fixtures;
mod harness;

mod ade;
mod admin;
mod checkin;
mod ddm;
mod dep;
mod escrow;
mod filevault;
mod fleet;
mod golden_images;
mod groups;
mod inventory;
mod parallels_activation;
mod profile_states;
mod profiles;
mod push;
mod queue;
mod recovery_lock;
mod webhooks;

/// For each case: `sqlite::case` and `postgres::case`. The case runs in its own task so a
/// failing assertion still lets the harness drop the PostgreSQL database.
macro_rules! conformance {
    ($($area:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        mod sqlite {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let db = super::harness::sqlite().await;
                    let store = db.store.clone();
                    let res = tokio::spawn(async move { super::$area::$case(&*store).await }).await;
                    drop(db);
                    if let Err(e) = res {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            )*)*
        }
        mod postgres {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[cfg_attr(russet_skip_postgres, ignore = "RUSSET_TEST_SKIP_POSTGRES is set")]
                async fn $case() {
                    let db = super::harness::postgres().await;
                    let store = db.store.clone();
                    let res = tokio::spawn(async move { super::$area::$case(&*store).await }).await;
                    db.drop_database().await;
                    if let Err(e) = res {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            )*)*
        }
    };
}

conformance! {
    checkin: [
        authenticate_binds_identity_and_refuses_another_device,
        authenticate_clears_queues_and_disables_until_token_update,
        token_update_for_unknown_device_is_refused,
        token_update_enables_and_creates_user_channels,
        check_out_disables_device_and_user_channels,
    ],
    queue: [
        urgent_commands_first_then_fifo,
        not_now_waits_for_the_next_session,
        last_seen_is_written_at_most_once_a_minute,
        sent_command_is_handed_out_again_on_next_idle,
        result_for_unknown_or_closed_command_is_flagged,
        disabled_or_unknown_enrollment_gets_no_commands,
        enqueue_reports_unknown_targets_in_order,
        enqueue_to_many_targets,
        cancel_only_pending_entries,
        cancel_races_delivery_with_exactly_one_winner,
        device_commands_newest_first,
        device_information_facts_land_on_the_device,
    ],
    push: [push_targets_come_in_pages_and_outcomes_are_recorded_in_bulk],
    escrow: [
        escrowed_pin_follows_its_command_and_outlives_the_device,
        escrow_needs_an_enrolled_device_and_is_atomic,
        bootstrap_token_is_append_only_and_clearable,
    ],
    admin: [
        delete_device_keeps_escrow_and_audit,
        list_devices_filters_and_pages,
        audit_is_newest_first_with_cursor,
        settings_upsert,
        admins_and_their_tokens,
        revoking_drops_tokens_and_keeps_the_last_admin,
        ping_and_backend,
    ],
    dep: [
        dep_link_token_cursor_and_call_outcomes,
        dep_upsert_is_idempotent_and_latest_op_date_wins,
        dep_auto_assign_waits_after_failure_and_rearms_on_added,
        dep_sync_leader_is_exclusive_across_servers,
    ],
    ade: [ade_setup_is_claimed_once_per_enrollment],
    ddm: [
        ddm_tokens_change_when_different_and_reports_merge,
        one_os_update_per_group_and_declarations_need_their_group,
    ],
    golden_images: [
        golden_image_names_are_unique_regardless_of_case,
        a_group_holds_at_most_one_golden_image,
        concurrent_assignments_of_a_group_have_one_winner,
    ],
    parallels_activation: [a_group_holds_one_parallels_activation],
    fleet: [
        fleet_counts_group_device_channels,
        audit_search_filters_newest_first,
    ],
    groups: [
        group_names_are_unique_regardless_of_case,
        static_members_resolve_by_udid_and_serial,
        device_facts_page_with_enrollment_and_dep_profile,
    ],
    profile_states: [profile_states_follow_commands_answers_and_devices],
    inventory: [
        inventory_parts_are_stored_with_their_times,
        inventory_apps_are_replaced_and_found_by_version,
        console_users_are_found_by_channel_or_user_list,
        inventory_changes_are_logged_for_facts_people_care_about,
        inventory_sweep_pages_through_due_macs_and_claims_them,
    ],
    profiles: [
        profile_versions_append_and_the_latest_wins,
        concurrent_uploads_of_one_identifier_store_one_version,
        deleting_is_soft_and_drops_the_assignments,
        assignments_name_groups_and_devices,
    ],
    filevault: [
        filevault_keys_are_kept_superseded_and_found_by_serial,
        a_rotation_finishes_once_and_proves_its_key,
        filevault_asks_are_due_in_order_and_go_with_the_device,
        rotations_after_a_reveal_keep_the_first_schedule,
    ],
    webhooks: [
        outbox_rows_are_per_url_leased_retried_and_released,
        outbox_expires_by_age_whatever_the_url,
        concurrent_claims_never_share_a_row,
        token_update_tally_restarts_at_each_enrollment,
    ],
    recovery_lock: [
        recovery_lock_escrow_follows_set_verify_and_supersede,
        recovery_lock_escrow_needs_an_enrolled_device_and_is_atomic,
        concurrent_recovery_lock_changes_queue_one,
    ],
}
