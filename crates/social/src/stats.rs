//! Dashboard shapes: money per currency in minor units, daily series with zero-filled days.
use chrono::{Duration, NaiveDate};
use oasis_kernel::Money;
use std::collections::BTreeMap;

/// Days in the dashboards' daily series.
pub const SERIES_DAYS: i64 = 30;

/// One day of a creator's series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyPoint {
    pub date: NaiveDate,
    pub new_members: i64,
    pub new_followers: i64,
    /// Earnings that day per currency (minor units); empty on a day without earnings.
    pub earnings: Vec<Money>,
}

/// Builds the `days`-long series ending at `today` (inclusive, oldest first) from sparse rows:
/// `(date, new_members, new_followers)` counts and `(date, money)` earnings; days without rows
/// are zero. Rows outside the window are ignored.
pub fn fill_daily(
    today: NaiveDate,
    days: i64,
    counts: &[(NaiveDate, i64, i64)],
    earnings: &[(NaiveDate, Money)],
) -> Vec<DailyPoint> {
    let first = today - Duration::days(days - 1);
    let mut out: BTreeMap<NaiveDate, DailyPoint> = (0..days)
        .map(|i| first + Duration::days(i))
        .map(|date| {
            (
                date,
                DailyPoint {
                    date,
                    new_members: 0,
                    new_followers: 0,
                    earnings: Vec::new(),
                },
            )
        })
        .collect();
    for &(date, members, followers) in counts {
        if let Some(p) = out.get_mut(&date) {
            p.new_members += members;
            p.new_followers += followers;
        }
    }
    for &(date, money) in earnings {
        if let Some(p) = out.get_mut(&date) {
            match p.earnings.iter_mut().find(|m| m.currency == money.currency) {
                Some(m) => m.amount += money.amount,
                None => {
                    p.earnings.push(money);
                    p.earnings.sort_by_key(|m| m.currency);
                }
            }
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oasis_kernel::Currency;

    #[test]
    fn series_is_dense_oldest_first_and_sums_per_currency() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let d = |n: i64| today - Duration::days(n);
        let s = fill_daily(
            today,
            30,
            &[(d(0), 2, 1), (d(29), 1, 0), (d(30), 9, 9)],
            &[
                (d(0), Money::new(500, Currency::Inr)),
                (d(0), Money::new(250, Currency::Inr)),
                (d(0), Money::new(100, Currency::Usd)),
                (d(31), Money::new(1, Currency::Usd)),
            ],
        );
        assert_eq!(s.len(), 30);
        assert_eq!(s[0].date, d(29));
        assert_eq!(s[0].new_members, 1);
        assert_eq!(s[29].date, today);
        assert_eq!((s[29].new_members, s[29].new_followers), (2, 1));
        assert_eq!(
            s[29].earnings,
            vec![
                Money::new(750, Currency::Inr),
                Money::new(100, Currency::Usd)
            ]
        );
        assert!(s[1..29]
            .iter()
            .all(|p| p.new_members == 0 && p.earnings.is_empty()));
    }
}
