//! Where the sync loop keeps its cursor. The MDM server implements this on its database; the
//! cursor is persisted after every page so a killed sync resumes without loss or duplicates.

pub trait CursorStore {
    type Error: std::error::Error + Send + Sync + 'static;

    fn load(
        &self,
        link: &str,
    ) -> impl std::future::Future<Output = Result<Option<String>, Self::Error>> + Send;

    fn save(
        &self,
        link: &str,
        cursor: &str,
    ) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send;
}
