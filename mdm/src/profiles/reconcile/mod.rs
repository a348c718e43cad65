//! The reconciler: for each Mac channel, compare the profiles it should have with what Russet
//! knows is on it, send InstallProfile and RemoveProfile, and move each profile's state on the
//! Mac's answers and ProfileLists (`plan.rs` holds the decisions).

pub mod plan;
