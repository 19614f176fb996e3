//! Password rules (Django's default validators) and hashing.
use std::collections::HashSet;
use std::sync::OnceLock;

pub const MIN_LENGTH: usize = 8;
/// Longer inputs are refused before hashing (bcrypt work is bounded anyway, but parsing is not).
pub const MAX_LENGTH: usize = 4096;
const MAX_SIMILARITY: f64 = 0.7;

static COMMON: &str = include_str!("common-passwords.txt");

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    })
}

/// What a password is checked against for similarity.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserAttributes<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
}

/// Django's `SequenceMatcher.quick_ratio`: 2·(multiset intersection) / (len a + len b).
fn quick_ratio(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let mut counts: std::collections::HashMap<char, i64> = std::collections::HashMap::new();
    for c in &b {
        *counts.entry(*c).or_default() += 1;
    }
    let mut matches = 0usize;
    for c in &a {
        if let Some(n) = counts.get_mut(c) {
            if *n > 0 {
                *n -= 1;
                matches += 1;
            }
        }
    }
    2.0 * matches as f64 / (a.len() + b.len()) as f64
}

/// Django's `exceeds_maximum_length_ratio`: a long password is not "similar" to a short value.
fn exceeds_length_ratio(password: &str, value: &str) -> bool {
    let pwd_len = password.chars().count() as f64;
    let value_len = value.chars().count() as f64;
    let bound = MAX_SIMILARITY / 2.0 * pwd_len;
    pwd_len >= 10.0 * value_len && value_len < bound
}

fn too_similar(password: &str, value: &str) -> bool {
    let password = password.to_lowercase();
    let value = value.to_lowercase();
    if value.is_empty() {
        return false;
    }
    let mut parts: Vec<&str> = value
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|p| !p.is_empty())
        .collect();
    parts.push(&value);
    parts.into_iter().any(|part| {
        !exceeds_length_ratio(&password, part) && quick_ratio(&password, part) >= MAX_SIMILARITY
    })
}

/// Messages for everything wrong with `password` (empty = acceptable), worded as Django's.
pub fn validate(password: &str, user: UserAttributes<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    let len = password.chars().count();
    if len > MAX_LENGTH {
        errors.push(format!(
            "Ensure this field has no more than {MAX_LENGTH} characters."
        ));
        return errors;
    }
    for (value, name) in [
        (user.username, "username"),
        (user.first_name, "first name"),
        (user.last_name, "last name"),
        (user.email, "email address"),
    ] {
        if too_similar(password, value) {
            errors.push(format!("The password is too similar to the {name}."));
            break;
        }
    }
    if len < MIN_LENGTH {
        errors.push(format!(
            "This password is too short. It must contain at least {MIN_LENGTH} characters."
        ));
    }
    if common().contains(password.trim().to_lowercase().as_str()) {
        errors.push("This password is too common.".to_owned());
    }
    if !password.is_empty() && password.chars().all(|c| c.is_ascii_digit()) {
        errors.push("This password is entirely numeric.".to_owned());
    }
    errors
}

/// The hashing port, so that rules about *when* hashing happens are testable without bcrypt.
pub trait PasswordHasher: Send + Sync {
    fn hash(&self, password: &str) -> Result<String, String>;
    /// `false` for a wrong password or an unparsable hash.
    fn verify(&self, password: &str, hash: &str) -> bool;
    /// A valid hash of an unguessable password, with the same cost as real ones.
    fn dummy_hash(&self) -> &str;
}

/// bcrypt with a configured cost. Clones share one dummy hash, computed on first use (one
/// bcrypt run at `cost`; call [`Bcrypt::warm`] off the request path to have it ready).
#[derive(Debug, Clone)]
pub struct Bcrypt {
    cost: u32,
    dummy: std::sync::Arc<OnceLock<String>>,
}

impl Bcrypt {
    /// Cheap: checks the cost only (4–31).
    pub fn new(cost: u32) -> Result<Self, String> {
        if !(4..=31).contains(&cost) {
            return Err(format!("bcrypt cost must be 4–31, got {cost}"));
        }
        Ok(Self {
            cost,
            dummy: Default::default(),
        })
    }
    pub fn cost(&self) -> u32 {
        self.cost
    }
    /// Computes the dummy hash now (blocking: run it on a spare thread).
    pub fn warm(&self) {
        let _ = self.dummy_hash();
    }
}

impl PasswordHasher for Bcrypt {
    fn hash(&self, password: &str) -> Result<String, String> {
        bcrypt::hash(password, self.cost).map_err(|e| e.to_string())
    }
    fn verify(&self, password: &str, hash: &str) -> bool {
        bcrypt::verify(password, hash).unwrap_or(false)
    }
    fn dummy_hash(&self) -> &str {
        self.dummy.get_or_init(|| {
            // The cost was checked in `new`, so hashing cannot fail.
            bcrypt::hash(crate::secrets::new_api_key(), self.cost).unwrap_or_default()
        })
    }
}

/// Checks `password` against the stored hash. Exactly one verify runs whether or not there is a
/// hash (an unknown account or one without a usable password verifies against the dummy hash),
/// so the time taken does not tell whether the account exists.
pub fn check_password(hasher: &dyn PasswordHasher, stored: Option<&str>, password: &str) -> bool {
    let target = stored.unwrap_or(hasher.dummy_hash());
    let ok = hasher.verify(password, target);
    ok && stored.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn attrs() -> UserAttributes<'static> {
        UserAttributes {
            username: "alice_wonder",
            email: "alice@example.com",
            first_name: "Alice",
            last_name: "Liddell",
        }
    }

    #[test]
    fn good_password_passes() {
        assert!(validate("correct horse battery staple", attrs()).is_empty());
        assert!(validate("Zx9!qPl2vB", attrs()).is_empty());
    }

    #[test]
    fn short_numeric_common_and_similar_are_refused() {
        let e = validate("abc", attrs());
        assert!(e.iter().any(|m| m.contains("too short")), "{e:?}");
        let e = validate("9384756102", attrs());
        assert_eq!(e, vec!["This password is entirely numeric."]);
        let e = validate("password1", attrs());
        assert_eq!(e, vec!["This password is too common."]);
        let e = validate("PASSWORD", attrs());
        assert!(e.contains(&"This password is too common.".to_owned()));
        let e = validate("alice_wonder1", attrs());
        assert_eq!(e, vec!["The password is too similar to the username."]);
        let e = validate("alice@example.co", attrs());
        assert!(e[0].contains("too similar"), "{e:?}");
    }

    #[test]
    fn common_list_is_loaded() {
        assert!(common().len() >= 4000);
        assert!(common().contains("qwerty"));
    }

    #[test]
    fn quick_ratio_matches_python() {
        // difflib.SequenceMatcher(a="abcd", b="bcde").quick_ratio() == 0.75
        assert!((quick_ratio("abcd", "bcde") - 0.75).abs() < 1e-9);
        assert!((quick_ratio("", "") - 1.0).abs() < 1e-9);
    }

    struct Counting {
        calls: AtomicUsize,
    }
    impl PasswordHasher for Counting {
        fn hash(&self, p: &str) -> Result<String, String> {
            Ok(format!("h:{p}"))
        }
        fn verify(&self, p: &str, h: &str) -> bool {
            self.calls.fetch_add(1, Ordering::SeqCst);
            h == format!("h:{p}")
        }
        fn dummy_hash(&self) -> &str {
            "h:\u{0}dummy"
        }
    }

    #[test]
    fn check_password_always_verifies_exactly_once() {
        let h = Counting {
            calls: AtomicUsize::new(0),
        };
        assert!(check_password(&h, Some("h:secret12"), "secret12"));
        assert!(!check_password(&h, Some("h:secret12"), "wrong"));
        // No account / no usable password: still one verify, and never a success.
        assert!(!check_password(&h, None, "secret12"));
        assert!(!check_password(&h, None, "\u{0}dummy"));
        assert_eq!(h.calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn bcrypt_round_trip_and_dummy() {
        let b = Bcrypt::new(4).unwrap();
        let h = b.hash("hunter2hunter2").unwrap();
        assert!(b.verify("hunter2hunter2", &h));
        assert!(!b.verify("nope", &h));
        assert!(!b.verify("x", "not a hash"));
        assert!(b.dummy_hash().starts_with("$2b$04$"));
        assert_eq!(
            b.clone().dummy_hash(),
            b.dummy_hash(),
            "clones share the dummy"
        );
        assert!(Bcrypt::new(3).is_err() && Bcrypt::new(32).is_err());
        assert!(!check_password(&b, None, "anything"));
    }
}
