//! Input rules, reported in Django REST framework's shapes.
use crate::password::{self, UserAttributes};
use oasis_kernel::FieldErrors;

pub const REQUIRED: &str = "This field is required.";
pub const BLANK: &str = "This field may not be blank.";
pub const INVALID_EMAIL: &str = "Enter a valid email address.";
pub const INVALID_USERNAME: &str =
    "Enter a valid username. This value may contain only letters, numbers, and ./-/_ characters.";
pub const PASSWORD_MISMATCH: &str = "The two password fields didn't match.";
/// Django REST framework's `ProhibitNullCharactersValidator` message (PostgreSQL cannot store NUL).
pub const NULL_CHARACTERS: &str = "Null characters are not allowed.";
pub const NAME_MAX: usize = 150;

/// A plausible email address (what Django's EmailValidator accepts, roughly): one `@`, a local
/// part of printable non-space characters, a dotted domain of letters/digits/hyphens.
pub fn is_valid_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || local.contains('@') {
        return false;
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    }) && labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_alphabetic()) && tld.len() >= 2)
}

/// Username rule messages (empty = fine).
pub fn username_errors(username: &str) -> Vec<String> {
    let mut e = Vec::new();
    let n = username.chars().count();
    if n == 0 {
        e.push(BLANK.to_owned());
        return e;
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        e.push(INVALID_USERNAME.to_owned());
    }
    if n < 3 {
        e.push("Ensure this field has at least 3 characters.".to_owned());
    }
    if n > 30 {
        e.push("Ensure this field has no more than 30 characters.".to_owned());
    }
    e
}

pub fn name_errors(name: &str) -> Vec<String> {
    let mut e = Vec::new();
    if name.contains('\0') {
        e.push(NULL_CHARACTERS.to_owned());
    }
    if name.chars().count() > NAME_MAX {
        e.push(format!(
            "Ensure this field has no more than {NAME_MAX} characters."
        ));
    }
    e
}

/// Registration input as received (every field optional: missing ones become field errors).
#[derive(Debug, Clone, Default)]
pub struct RegistrationInput {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password2: Option<String>,
    pub login_type: Option<String>,
}

/// A registration that passed every rule (uniqueness is left to the database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub username: String,
    pub password: String,
}

fn required<'a>(errors: &mut FieldErrors, field: &str, v: &'a Option<String>) -> Option<&'a str> {
    match v.as_deref() {
        None => {
            errors.add(field, REQUIRED);
            None
        }
        Some(s) if s.trim().is_empty() => {
            errors.add(field, BLANK);
            None
        }
        Some(s) if s.contains('\0') => {
            errors.add(field, NULL_CHARACTERS);
            None
        }
        Some(s) => Some(s),
    }
}

pub fn registration(input: &RegistrationInput) -> Result<Registration, FieldErrors> {
    let mut errors = FieldErrors::new();
    let email = required(&mut errors, "email", &input.email).map(str::trim);
    if let Some(e) = email {
        if !is_valid_email(e) {
            errors.add("email", INVALID_EMAIL);
        }
    }
    let username = required(&mut errors, "username", &input.username).map(str::trim);
    if let Some(u) = username {
        for m in username_errors(u) {
            errors.add("username", m);
        }
    }
    let first_name = input.first_name.as_deref().unwrap_or("").trim();
    let last_name = input.last_name.as_deref().unwrap_or("").trim();
    for (field, v) in [("first_name", first_name), ("last_name", last_name)] {
        for m in name_errors(v) {
            errors.add(field, m);
        }
    }
    match input.login_type.as_deref() {
        None | Some("manual") | Some("") => {}
        Some(_) => errors.add(
            "login_type",
            "Only \"manual\" accounts can register with a password.",
        ),
    }
    let password = required(&mut errors, "password", &input.password);
    let password2 = required(&mut errors, "password2", &input.password2);
    if let (Some(p1), Some(p2)) = (password, password2) {
        if p1 != p2 {
            errors.add("password2", PASSWORD_MISMATCH);
        } else {
            for m in password::validate(
                p1,
                UserAttributes {
                    username: username.unwrap_or(""),
                    email: email.unwrap_or(""),
                    first_name,
                    last_name,
                },
            ) {
                errors.add("password", m);
            }
        }
    }
    errors.into_result()?;
    Ok(Registration {
        email: email.unwrap_or_default().to_owned(),
        first_name: first_name.to_owned(),
        last_name: last_name.to_owned(),
        username: username.unwrap_or_default().to_owned(),
        password: password.unwrap_or_default().to_owned(),
    })
}

/// New-password pair (change/reset): equal and acceptable.
pub fn new_password(
    p1: Option<&str>,
    p2: Option<&str>,
    user: UserAttributes<'_>,
) -> Result<String, FieldErrors> {
    let mut errors = FieldErrors::new();
    let p1v = p1.map(str::to_owned);
    let p2v = p2.map(str::to_owned);
    let a = required(&mut errors, "new_password1", &p1v);
    let b = required(&mut errors, "new_password2", &p2v);
    if let (Some(a), Some(b)) = (a, b) {
        if a != b {
            errors.add("new_password2", PASSWORD_MISMATCH);
        } else {
            for m in password::validate(a, user) {
                errors.add("new_password2", m);
            }
        }
    }
    errors.into_result()?;
    Ok(p1.unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> RegistrationInput {
        RegistrationInput {
            email: Some("fan@example.com".into()),
            first_name: Some("Fan".into()),
            last_name: Some("One".into()),
            username: Some("fan_one".into()),
            password: Some("s3cret-Passphrase".into()),
            password2: Some("s3cret-Passphrase".into()),
            login_type: Some("manual".into()),
        }
    }

    #[test]
    fn accepts_a_good_registration() {
        let r = registration(&good()).unwrap();
        assert_eq!(r.username, "fan_one");
    }

    #[test]
    fn reports_each_field() {
        let e = registration(&RegistrationInput::default()).unwrap_err();
        for f in ["email", "username", "password", "password2"] {
            assert!(e.has(f), "{f}: {e}");
        }
        let mut i = good();
        i.password2 = Some("other-Passphrase".into());
        let e = registration(&i).unwrap_err();
        assert_eq!(e.to_string(), format!("password2: {PASSWORD_MISMATCH}"));
        let mut i = good();
        i.email = Some("not-an-email".into());
        i.username = Some("a b".into());
        i.first_name = Some("x".repeat(151));
        let e = registration(&i).unwrap_err();
        assert!(
            e.has("email") && e.has("username") && e.has("first_name"),
            "{e}"
        );
    }

    #[test]
    fn null_characters_are_field_errors() {
        let mut i = good();
        i.first_name = Some("a\0b".into());
        i.last_name = Some("c\0".into());
        i.password = Some("s3cret-Pass\0phrase".into());
        i.password2 = i.password.clone();
        let e = registration(&i).unwrap_err();
        for f in ["first_name", "last_name", "password"] {
            assert!(e.has(f), "{f}: {e}");
        }
        assert!(e.to_string().contains(NULL_CHARACTERS), "{e}");
        assert!(!is_valid_email("a\0b@example.com"));
    }

    #[test]
    fn email_syntax() {
        for ok in ["a@b.co", "first.last+tag@sub.example.org"] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "a@@b.co",
            "a b@c.co",
            "@b.co",
            "a@-b.co",
            "a@b.c",
            "a..b@c.co",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn username_rules() {
        assert!(username_errors("ab.c-d_9").is_empty());
        assert!(!username_errors("ab").is_empty());
        assert!(!username_errors(&"a".repeat(31)).is_empty());
        assert!(!username_errors("héllo").is_empty());
    }
}
