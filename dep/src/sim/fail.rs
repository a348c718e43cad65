//! The error answer of a simulated DEP call, shared by the state, the profile validation and
//! the HTTP layer.

/// A failure the handler returns instead of the normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiFail {
    pub status: u16,
    pub code: String,
}

impl ApiFail {
    pub fn new(status: u16, code: &str) -> Self {
        ApiFail {
            status,
            code: code.to_owned(),
        }
    }
}
