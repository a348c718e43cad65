//! Configuration profiles as desired state: the catalog, and the reconciler that makes every
//! Mac match what its groups and assignments say, verified by the Mac's own ProfileList.

pub mod reconcile;
