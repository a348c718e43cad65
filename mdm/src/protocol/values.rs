//! Typed access to the keys of a decoded plist dictionary, with errors that name the key.

use plist::{Dictionary, Value};

use super::ProtocolError;

/// Human name of a plist value's type, as Apple's schemas spell it.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "<array>",
        Value::Dictionary(_) => "<dictionary>",
        Value::Boolean(_) => "<boolean>",
        Value::Data(_) => "<data>",
        Value::Date(_) => "<date>",
        Value::Real(_) => "<real>",
        Value::Integer(_) => "<integer>",
        Value::String(_) => "<string>",
        Value::Uid(_) => "<uid>",
        _ => "<unknown>",
    }
}

fn wrong_type(key: &str, want: &str, got: &Value) -> ProtocolError {
    ProtocolError::Malformed(format!(
        "key {key} must be {want}, found {}",
        type_name(got)
    ))
}

fn missing(key: &str) -> ProtocolError {
    ProtocolError::Malformed(format!("required key {key} is missing"))
}

/// Wrapper over a decoded top-level dictionary.
pub(super) struct Fields<'a>(pub &'a Dictionary);

impl Fields<'_> {
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, ProtocolError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong_type(key, "<string>", other)),
        }
    }

    pub fn req_str(&self, key: &str) -> Result<String, ProtocolError> {
        self.opt_str(key)?.ok_or_else(|| missing(key))
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ProtocolError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(key, "<boolean>", other)),
        }
    }

    pub fn opt_data(&self, key: &str) -> Result<Option<Vec<u8>>, ProtocolError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Data(d)) => Ok(Some(d.clone())),
            Some(other) => Err(wrong_type(key, "<data>", other)),
        }
    }

    pub fn req_data(&self, key: &str) -> Result<Vec<u8>, ProtocolError> {
        self.opt_data(key)?.ok_or_else(|| missing(key))
    }

    pub fn opt_dict(&self, key: &str) -> Result<Option<Dictionary>, ProtocolError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Dictionary(d)) => Ok(Some(d.clone())),
            Some(other) => Err(wrong_type(key, "<dictionary>", other)),
        }
    }

    pub fn opt_array(&self, key: &str) -> Result<Option<&Vec<Value>>, ProtocolError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(wrong_type(key, "<array>", other)),
        }
    }

    pub fn opt_int(&self, key: &str) -> Result<Option<i64>, ProtocolError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Integer(i)) => i
                .as_signed()
                .map(Some)
                .ok_or_else(|| ProtocolError::Malformed(format!("key {key} is out of range"))),
            Some(other) => Err(wrong_type(key, "<integer>", other)),
        }
    }
}
