//! Input validation, with DRF-shaped field errors.
use crate::model::*;
use oasis_kernel::{Currency, FieldErrors};

pub const MAX_TIER_NAME: usize = 100;
pub const MAX_TIER_DESCRIPTION: usize = 5_000;
pub const MAX_BENEFITS: usize = 50;
pub const MAX_BENEFIT_LEN: usize = 300;
pub const MAX_TITLE: usize = 300;
pub const MAX_BODY: usize = 100_000;
pub const MAX_COMMENT: usize = 5_000;
pub const MAX_POST_TIERS: usize = 50;
pub const MAX_POST_ATTACHMENTS: usize = 20;
/// A tier's free trial is 0 to 31 days (issue 14).
pub const MAX_TRIAL_DAYS: i64 = 31;

const REQUIRED: &str = "This field is required.";

/// Raw tier fields as received (create: required ones must be present; update: any subset).
#[derive(Debug, Clone, Default)]
pub struct TierInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price: Option<i64>,
    /// `Some(None)`: an explicit null (monthly only).
    pub annual_price: Option<Option<i64>>,
    pub trial_days: Option<i64>,
    pub currency: Option<String>,
    pub benefits: Option<Vec<String>>,
    pub is_active: Option<bool>,
}

/// Raw post fields as received.
#[derive(Debug, Clone, Default)]
pub struct PostInput {
    pub title: Option<String>,
    pub body: Option<String>,
    pub tiers: Option<Vec<i64>>,
    pub attachments: Option<Vec<i64>>,
}

fn check_len(errs: &mut FieldErrors, field: &str, s: &str, min: usize, max: usize) {
    let n = s.chars().count();
    if s.contains('\0') {
        // PostgreSQL TEXT cannot store NUL; DRF refuses it with this message.
        errs.add(field, "Null characters are not allowed.");
    } else if n < min {
        errs.add(field, "This field may not be blank.");
    } else if n > max {
        errs.add(
            field,
            format!("Ensure this field has no more than {max} characters."),
        );
    }
}

fn check_price(errs: &mut FieldErrors, price: i64, currency: Currency) {
    if price < 0 {
        errs.add("price", "Ensure this value is greater than or equal to 0.");
    } else if price > 0 && price < currency.min_charge() {
        errs.add(
            "price",
            format!(
                "A paid tier costs at least {} minor units of {currency}; use 0 for a free tier.",
                currency.min_charge()
            ),
        );
    } else if price > currency.max_charge() {
        errs.add(
            "price",
            format!(
                "Ensure this value is less than or equal to {} ({currency} minor units).",
                currency.max_charge()
            ),
        );
    }
}

/// A trial is 0 to [`MAX_TRIAL_DAYS`] days, on a paid tier only.
fn check_trial_days(errs: &mut FieldErrors, days: i64, price: i64) {
    if !(0..=MAX_TRIAL_DAYS).contains(&days) {
        errs.add(
            "trial_days",
            format!("Ensure this value is between 0 and {MAX_TRIAL_DAYS}."),
        );
    } else if days > 0 && price == 0 {
        errs.add(
            "trial_days",
            "A free tier has no trial; leave trial_days 0.",
        );
    }
}

/// A yearly price needs a paid monthly price beside it and obeys the same charge limits.
fn check_annual_price(errs: &mut FieldErrors, annual: Option<i64>, price: i64, currency: Currency) {
    let Some(a) = annual else { return };
    if price == 0 {
        errs.add(
            "annual_price",
            "A free tier has no yearly price; leave annual_price null.",
        );
    } else if a < currency.min_charge() {
        errs.add(
            "annual_price",
            format!(
                "A yearly price is at least {} minor units of {currency}.",
                currency.min_charge()
            ),
        );
    } else if a > currency.max_charge() {
        errs.add(
            "annual_price",
            format!(
                "Ensure this value is less than or equal to {} ({currency} minor units).",
                currency.max_charge()
            ),
        );
    }
}

fn parse_currency(errs: &mut FieldErrors, c: &str) -> Option<Currency> {
    match c.parse::<Currency>() {
        Ok(c) => Some(c),
        Err(_) => {
            errs.add("currency", format!("\"{c}\" is not a valid choice."));
            None
        }
    }
}

fn clean_benefits(errs: &mut FieldErrors, b: &[String]) -> Vec<String> {
    if b.len() > MAX_BENEFITS {
        errs.add(
            "benefits",
            format!("Ensure this field has no more than {MAX_BENEFITS} elements."),
        );
    }
    let out: Vec<String> = b.iter().map(|s| s.trim().to_owned()).collect();
    if out
        .iter()
        .any(|s| s.is_empty() || s.contains('\0') || s.chars().count() > MAX_BENEFIT_LEN)
    {
        errs.add(
            "benefits",
            format!("Each benefit must be 1 to {MAX_BENEFIT_LEN} characters."),
        );
    }
    out
}

/// The ids in first-seen order without repeats. Linear: a body may carry ~100k ids before the
/// JSON limit, and a quadratic scan of them held a worker for seconds before the length check.
pub(crate) fn dedup_ids(ids: &[i64]) -> Vec<i64> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

/// Validates a new tier. Currency defaults to INR, description to "", benefits to [].
pub fn validate_new_tier(input: TierInput) -> Result<NewTier, FieldErrors> {
    let mut errs = FieldErrors::new();
    let name = input.name.map(|s| s.trim().to_owned());
    match &name {
        None => errs.add("name", REQUIRED),
        Some(n) => check_len(&mut errs, "name", n, 1, MAX_TIER_NAME),
    }
    let description = input.description.unwrap_or_default().trim().to_owned();
    check_len(
        &mut errs,
        "description",
        &description,
        0,
        MAX_TIER_DESCRIPTION,
    );
    let currency = match input.currency {
        None => Some(Currency::Inr),
        Some(c) => parse_currency(&mut errs, &c),
    };
    match (input.price, currency) {
        (None, _) => errs.add("price", REQUIRED),
        (Some(p), Some(c)) => check_price(&mut errs, p, c),
        (Some(_), None) => {}
    }
    let annual_price = input.annual_price.flatten();
    if let (Some(p), Some(c)) = (input.price, currency) {
        check_annual_price(&mut errs, annual_price, p, c);
    }
    let trial_days = input.trial_days.unwrap_or(0);
    check_trial_days(&mut errs, trial_days, input.price.unwrap_or_default());
    let benefits = clean_benefits(&mut errs, &input.benefits.unwrap_or_default());
    errs.into_result()?;
    Ok(NewTier {
        name: name.unwrap_or_default(),
        description,
        price: input.price.unwrap_or_default(),
        annual_price,
        trial_days,
        currency: currency.unwrap_or(Currency::Inr),
        benefits,
        is_active: input.is_active.unwrap_or(true),
    })
}

/// Validates a partial tier update against the current tier (price limits depend on the
/// resulting currency).
pub fn validate_tier_changes(current: &Tier, input: TierInput) -> Result<TierChanges, FieldErrors> {
    let mut errs = FieldErrors::new();
    let name = input.name.map(|s| s.trim().to_owned());
    if let Some(n) = &name {
        check_len(&mut errs, "name", n, 1, MAX_TIER_NAME);
    }
    let description = input.description.map(|s| s.trim().to_owned());
    if let Some(d) = &description {
        check_len(&mut errs, "description", d, 0, MAX_TIER_DESCRIPTION);
    }
    let currency = input.currency.and_then(|c| parse_currency(&mut errs, &c));
    if let Some(p) = input.price {
        check_price(&mut errs, p, currency.unwrap_or(current.currency));
    }
    // The yearly price is checked against the resulting monthly price and currency.
    check_annual_price(
        &mut errs,
        input.annual_price.unwrap_or(current.annual_price),
        input.price.unwrap_or(current.price),
        currency.unwrap_or(current.currency),
    );
    check_trial_days(
        &mut errs,
        input.trial_days.unwrap_or(current.trial_days),
        input.price.unwrap_or(current.price),
    );
    let benefits = input.benefits.map(|b| clean_benefits(&mut errs, &b));
    errs.into_result()?;
    Ok(TierChanges {
        name,
        description,
        price: input.price,
        annual_price: input.annual_price,
        trial_days: input.trial_days,
        currency,
        benefits,
        is_active: input.is_active,
    })
}

fn check_ids(errs: &mut FieldErrors, field: &str, ids: &[i64], max: usize) {
    if ids.len() > max {
        errs.add(
            field,
            format!("Ensure this field has no more than {max} elements."),
        );
    }
}

pub fn validate_new_post(input: PostInput) -> Result<NewPost, FieldErrors> {
    let mut errs = FieldErrors::new();
    let title = input.title.map(|s| s.trim().to_owned());
    match &title {
        None => errs.add("title", REQUIRED),
        Some(t) => check_len(&mut errs, "title", t, 1, MAX_TITLE),
    }
    let body = input.body.unwrap_or_default();
    check_len(&mut errs, "body", &body, 0, MAX_BODY);
    let tier_ids = dedup_ids(&input.tiers.unwrap_or_default());
    check_ids(&mut errs, "tiers", &tier_ids, MAX_POST_TIERS);
    let attachment_ids = dedup_ids(&input.attachments.unwrap_or_default());
    check_ids(
        &mut errs,
        "attachments",
        &attachment_ids,
        MAX_POST_ATTACHMENTS,
    );
    errs.into_result()?;
    Ok(NewPost {
        title: title.unwrap_or_default(),
        body,
        tier_ids,
        attachment_ids,
    })
}

pub fn validate_post_changes(input: PostInput) -> Result<PostChanges, FieldErrors> {
    let mut errs = FieldErrors::new();
    let title = input.title.map(|s| s.trim().to_owned());
    if let Some(t) = &title {
        check_len(&mut errs, "title", t, 1, MAX_TITLE);
    }
    if let Some(b) = &input.body {
        check_len(&mut errs, "body", b, 0, MAX_BODY);
    }
    let tier_ids = input.tiers.map(|t| dedup_ids(&t));
    if let Some(t) = &tier_ids {
        check_ids(&mut errs, "tiers", t, MAX_POST_TIERS);
    }
    let attachment_ids = input.attachments.map(|a| dedup_ids(&a));
    if let Some(a) = &attachment_ids {
        check_ids(&mut errs, "attachments", a, MAX_POST_ATTACHMENTS);
    }
    errs.into_result()?;
    Ok(PostChanges {
        title,
        body: input.body,
        tier_ids,
        attachment_ids,
    })
}

/// A comment is 1–5000 characters (surrounding whitespace is not counted).
pub fn validate_comment_text(text: Option<String>) -> Result<String, FieldErrors> {
    let Some(text) = text else {
        return Err(FieldErrors::single("text", REQUIRED));
    };
    let t = text.trim().to_owned();
    let mut errs = FieldErrors::new();
    check_len(&mut errs, "text", &t, 1, MAX_COMMENT);
    errs.into_result().map(|_| t)
}
