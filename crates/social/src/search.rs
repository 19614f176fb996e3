//! Search query rules.
use crate::SocialError;

/// Longest accepted query, in characters (after trimming).
pub const MAX_QUERY_CHARS: usize = 100;
/// At most this many words take part in the full-text query.
const MAX_TERMS: usize = 8;

/// A validated search query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The trimmed query, lower-cased (for name similarity).
    pub text: String,
    /// Its words: letters and digits only, lower-cased.
    pub terms: Vec<String>,
}

impl SearchQuery {
    /// `q` trimmed must be 1..=100 characters. Control characters (NUL included, which
    /// PostgreSQL text cannot hold) count as spaces.
    pub fn parse(q: Option<&str>) -> Result<Self, SocialError> {
        let cleaned: String = q
            .unwrap_or("")
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let text = cleaned.trim();
        if text.is_empty() {
            return Err(SocialError::invalid("q", "This field may not be blank."));
        }
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(SocialError::invalid(
                "q",
                format!("Ensure this field has no more than {MAX_QUERY_CHARS} characters."),
            ));
        }
        let terms: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .take(MAX_TERMS)
            .map(|w| w.to_lowercase())
            .collect();
        Ok(Self {
            text: text.to_lowercase(),
            terms,
        })
    }

    /// A `to_tsquery` text matching every word as a prefix (`w1:* & w2:*`); `None` when the query
    /// has no words (then only names can match). Safe to pass to `to_tsquery`: words are
    /// alphanumeric only.
    pub fn prefix_tsquery(&self) -> Option<String> {
        if self.terms.is_empty() {
            return None;
        }
        Some(
            self.terms
                .iter()
                .map(|t| format!("{t}:*"))
                .collect::<Vec<_>>()
                .join(" & "),
        )
    }

    /// A `LIKE` pattern (escape `\\`) matching names that contain the query.
    pub fn contains_pattern(&self) -> String {
        format!("%{}%", self.like_escaped())
    }

    /// A `LIKE` pattern (escape `\\`) matching names that start with the query.
    pub fn prefix_pattern(&self) -> String {
        format!("{}%", self.like_escaped())
    }

    fn like_escaped(&self) -> String {
        let mut p = String::with_capacity(self.text.len() + 2);
        for c in self.text.chars() {
            if matches!(c, '%' | '_' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_long_queries_are_refused() {
        assert!(SearchQuery::parse(None).is_err());
        assert!(SearchQuery::parse(Some("   ")).is_err());
        assert!(SearchQuery::parse(Some(&"a".repeat(101))).is_err());
        assert!(SearchQuery::parse(Some(&"é".repeat(100))).is_ok());
        assert!(SearchQuery::parse(Some("\0\t\n")).is_err());
        assert_eq!(SearchQuery::parse(Some("a\0b")).unwrap().text, "a b");
    }

    #[test]
    fn terms_are_sanitised_for_tsquery() {
        let q = SearchQuery::parse(Some("  Rust & <b>Async</b>:* 'x' ")).unwrap();
        assert_eq!(q.terms, ["rust", "b", "async", "b", "x"]);
        assert_eq!(
            q.prefix_tsquery().unwrap(),
            "rust:* & b:* & async:* & b:* & x:*"
        );
        let q = SearchQuery::parse(Some("!!")).unwrap();
        assert_eq!(q.prefix_tsquery(), None);
        assert_eq!(
            SearchQuery::parse(Some("50%_a\\"))
                .unwrap()
                .contains_pattern(),
            "%50\\%\\_a\\\\%"
        );
    }
}
