use std::collections::BTreeMap;

/// Field-level validation errors in Django REST framework's shape:
/// `{"field": ["message", ...], "non_field_errors": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }
    /// One error on one field.
    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new();
        e.add(field, message);
        e
    }
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.0.iter()
    }
    /// `Ok(())` when empty, otherwise `Err(self)`.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (k, v) in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{k}: {}", v.join(" "))?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

/// What a repository (database adapter) can fail with, independent of the database.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The row does not exist (HTTP 404).
    #[error("not found")]
    NotFound,
    /// A uniqueness or foreign-key constraint refused the write (HTTP 400/409 by the caller's choice).
    #[error("constraint {constraint} violated")]
    Conflict { constraint: String },
    /// The database failed in a way retrying will not fix (an unknown stored value, a bad
    /// statement): HTTP 500, or 400 when PostgreSQL refused a value the request carried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The database could not be reached, lost the connection, is shutting down or starting
    /// up, or cancelled the statement (statement timeout): transient, HTTP 503 (try again).
    #[error("storage unreachable: {0}")]
    Unreachable(String),
}

impl RepoError {
    pub fn is_conflict_on(&self, name: &str) -> bool {
        matches!(self, RepoError::Conflict { constraint } if constraint == name)
    }
}
