use serde::{Deserialize, Serialize};

/// How an account signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginType {
    Manual,
    Google,
    Facebook,
}

impl LoginType {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginType::Manual => "manual",
            LoginType::Google => "google",
            LoginType::Facebook => "facebook",
        }
    }
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// bcrypt hash; `None` = no usable password (social accounts).
    pub password_hash: Option<String>,
    pub is_creator: bool,
    pub profile_pic: Option<String>,
    pub bio: String,
    pub login_type: String,
    pub email_verified: bool,
    pub is_active: bool,
    /// When the password last changed (access tokens issued before are no longer accepted).
    pub credentials_changed_at: Option<oasis_kernel::Timestamp>,
    /// Bumped whenever every session must end (password change or reset, a verified owner
    /// claiming the account); JWTs carry the epoch they were issued under.
    pub session_epoch: i64,
}

impl User {
    /// A JWT issued at `iat` (seconds) under session epoch `epoch` still stands: it was issued
    /// under the current epoch and not before the last password change. (The epoch separates
    /// tokens of the same second; the `iat` check covers tokens minted before epochs existed.)
    pub fn accepts_token(&self, iat: i64, epoch: i64) -> bool {
        epoch >= self.session_epoch
            && self
                .credentials_changed_at
                .is_none_or(|changed| iat >= changed.timestamp())
    }
}

/// An account to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password_hash: Option<String>,
    pub login_type: LoginType,
    pub email_verified: bool,
    pub profile_pic: Option<String>,
}

/// What an identity provider told us about a person (already verified cryptographically or by
/// the provider's API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialProfile {
    pub provider: LoginType,
    /// The provider's stable user id (`sub` / Facebook id).
    pub subject: String,
    pub email: Option<String>,
    /// The provider vouches that the person controls `email`.
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
    pub picture: Option<String>,
}

/// Profile changes (PATCH of the own account); `None` = unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_creator: Option<bool>,
    pub bio: Option<String>,
    /// `Some(None)` clears the picture.
    pub profile_pic: Option<Option<String>>,
}
