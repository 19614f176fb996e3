//! `social` routes: `/feed/api/...` — follows, the feed, creator profiles, search, dashboards —
//! and the seed's second follow path `PATCH /content/api/user-creator`.
//!
//! Posts are rendered exactly as the catalog renders them (`oasis_db::catalog::load_post_views`
//! + `routes::catalog::post_dto`): one post shape, one visibility rule.
use crate::auth::{AuthUser, CreatorUser, MaybeAuthUser};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::routes::catalog::{paginated, post_dto, tier_dto, MediaLinks, PostDto, TierDto};
use crate::web;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{NaiveDate, Utc};
use oasis_catalog::PostView;
use oasis_db::catalog as catalog_repo;
use oasis_db::social::{self as repo, PgSocial, Totals};
use oasis_kernel::{Money, Page};
use oasis_social::{FeedPosition, SearchQuery, SocialError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Creators and posts returned by one search.
const SEARCH_CREATORS: i64 = 10;
const SEARCH_POSTS: i64 = 20;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        follow_status, follow, unfollow, user_creator, feed, user_profile, get_posts, search,
        stats, userstats
    ),
    components(schemas(
        FollowStatus, UserCreatorBody, UserCreatorStatus, FeedPage, ProfileDto, TierDto,
        ProfilePage, OwnPostsPage, SearchResults, CreatorHitDto, MoneyDto, TotalsDto, TierStatsDto,
        DayDto, CreatorStatsDto, UserStatsDto
    )),
    tags((name = "social", description = "Follows, feed, creator profiles, search, dashboards"))
)]
pub struct ApiDoc;

pub fn config(cfg: &mut web::ServiceConfig, _ctx: &AppContext) {
    cfg.service(
        web::resource("/feed/api/follow/{creator_id}")
            .route(web::get().to(follow_status))
            .route(web::post().to(follow))
            .route(web::delete().to(unfollow)),
    )
    .service(web::resource("/content/api/user-creator").route(web::patch().to(user_creator)))
    .service(web::resource("/feed/api/feed").route(web::get().to(feed)))
    .service(web::resource("/feed/api/user-profile/{id}").route(web::get().to(user_profile)))
    .service(web::resource("/feed/api/get-posts").route(web::get().to(get_posts)))
    .service(web::resource("/feed/api/search").route(web::get().to(search)))
    .service(web::resource("/feed/api/stats").route(web::get().to(stats)))
    .service(web::resource("/feed/api/userstats").route(web::get().to(userstats)));
}

/// The one place social errors become HTTP errors.
impl From<SocialError> for ApiError {
    fn from(e: SocialError) -> Self {
        match e {
            SocialError::CannotFollowSelf => {
                ApiError::bad_request("cannot_follow_self", e.to_string())
            }
            SocialError::NotACreator => ApiError::bad_request("not_a_creator", e.to_string()),
            SocialError::UserNotFound => ApiError::not_found(),
            SocialError::Invalid { field, message } => ApiError::field(field, message),
            SocialError::Repo(r) => r.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Follows

#[derive(Debug, Serialize, ToSchema)]
pub struct FollowStatus {
    pub is_following: bool,
}

/// Whether the caller follows the user (false for yourself or a non-creator).
#[utoipa::path(get, path = "/feed/api/follow/{creator_id}", tag = "social",
    params(("creator_id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = FollowStatus), (status = 401), (status = 404)))]
async fn follow_status(
    ctx: web::Data<AppContext>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (me, id) = (user.user_id, id.into_inner());
    let is_following = ctx
        .db
        .run(move |c| Ok(oasis_social::is_following(&mut PgSocial(c), me, id)?))
        .await?;
    Ok(HttpResponse::Ok().json(FollowStatus { is_following }))
}

async fn set_follow(ctx: &AppContext, me: i64, creator: i64, on: bool) -> Result<(), ApiError> {
    ctx.db
        .tx(move |c| {
            let repo = &mut PgSocial(c);
            if on {
                if oasis_social::follow(repo, me, creator)? {
                    let event = oasis_notify::Event::Followed {
                        follower_id: me,
                        creator_id: creator,
                    };
                    oasis_db::notify::enqueue_event(c, &event)?;
                }
            } else {
                oasis_social::unfollow(repo, me, creator)?;
            }
            Ok(())
        })
        .await?;
    ctx.jobs.wake();
    Ok(())
}

/// Follows a creator (idempotent).
#[utoipa::path(post, path = "/feed/api/follow/{creator_id}", tag = "social",
    params(("creator_id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = FollowStatus),
        (status = 400, description = "yourself or not a creator"), (status = 401), (status = 404)))]
async fn follow(
    ctx: web::Data<AppContext>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    set_follow(&ctx, user.user_id, id.into_inner(), true).await?;
    Ok(HttpResponse::Ok().json(FollowStatus { is_following: true }))
}

/// Stops following a creator (idempotent).
#[utoipa::path(delete, path = "/feed/api/follow/{creator_id}", tag = "social",
    params(("creator_id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = FollowStatus),
        (status = 400, description = "yourself or not a creator"), (status = 401), (status = 404)))]
async fn unfollow(
    ctx: web::Data<AppContext>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    set_follow(&ctx, user.user_id, id.into_inner(), false).await?;
    Ok(HttpResponse::Ok().json(FollowStatus {
        is_following: false,
    }))
}

/// `{"creator": <user id>, "follow": true|false}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserCreatorBody {
    pub creator: Option<i64>,
    pub follow: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserCreatorStatus {
    pub creator: i64,
    pub is_following: bool,
}

/// Follows (`follow: true`) or unfollows (`false`) a creator: the seed's second follow path.
#[utoipa::path(patch, path = "/content/api/user-creator", tag = "social",
    request_body = UserCreatorBody, security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = UserCreatorStatus),
        (status = 400, description = "missing fields, yourself or not a creator"),
        (status = 401), (status = 404)))]
async fn user_creator(
    ctx: web::Data<AppContext>,
    user: AuthUser,
    body: web::Json<UserCreatorBody>,
) -> Result<HttpResponse, ApiError> {
    let mut errs = oasis_kernel::FieldErrors::new();
    if body.creator.is_none() {
        errs.add("creator", "This field is required.");
    }
    if body.follow.is_none() {
        errs.add("follow", "This field is required.");
    }
    errs.into_result()?;
    let (creator, on) = (
        body.creator.unwrap_or_default(),
        body.follow.unwrap_or_default(),
    );
    set_follow(&ctx, user.user_id, creator, on).await?;
    Ok(HttpResponse::Ok().json(UserCreatorStatus {
        creator,
        is_following: on,
    }))
}

// ---------------------------------------------------------------------------------------------
// Feed

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// 1-based page number.
    pub page: Option<i64>,
    /// Items per page (1–`OASIS_MAX_PAGE_SIZE`, 100 by default; default 10).
    pub page_size: Option<i64>,
    /// Snapshot pin: only posts with `id <= max_id` (set by page 1 in its `next` link).
    pub max_id: Option<i64>,
    /// Opaque keyset cursor (from `next_cursor` or a cursor `next` link); wins over `page`.
    pub cursor: Option<String>,
}

/// DRF's page plus `next_cursor` (keyset position after this page, for `?cursor=`).
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedPage {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub next_cursor: Option<String>,
    pub results: Vec<PostDto>,
}

/// The request's absolute URL with `params` replacing the pagination parameters.
fn link(req: &HttpRequest, params: &[(&str, String)]) -> String {
    crate::pagination::page_link(req, &["page", "max_id", "cursor"], params)
}

/// Posts of creators the caller follows or is a member of, newest first, locked ones with
/// `body: null`. Page links carry `max_id` (the snapshot's newest post id), so following `next`
/// while new posts arrive yields no duplicates and no gaps; `?cursor=` gives keyset pages.
#[utoipa::path(get, path = "/feed/api/feed", tag = "social", params(FeedQuery),
    security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = FeedPage), (status = 400, description = "bad page or cursor"),
        (status = 401)))]
async fn feed(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    user: AuthUser,
    q: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let pos = FeedPosition::parse(
        q.page,
        q.page_size,
        q.max_id,
        q.cursor.as_deref(),
        ctx.settings.max_page_size,
    )?;
    let me = user.user_id;
    let (page, views) = ctx.reads.feed(&ctx.db, me, pos).await?;
    let next_cursor = page.next_cursor.map(|c| c.encode());
    let (next, previous) = match pos {
        FeedPosition::Page { page: p, .. } => {
            let pin = ("max_id", page.max_id.to_string());
            (
                page.has_more
                    .then(|| link(&req, &[("page", (p.page + 1).to_string()), pin.clone()])),
                (p.page > 1).then(|| {
                    if p.page == 2 {
                        link(&req, std::slice::from_ref(&pin))
                    } else {
                        link(&req, &[("page", (p.page - 1).to_string()), pin.clone()])
                    }
                }),
            )
        }
        FeedPosition::After { .. } => (
            next_cursor
                .as_ref()
                .map(|c| link(&req, &[("cursor", c.clone())])),
            None,
        ),
    };
    let links = MediaLinks::new(&req, &ctx.settings, Some(me));
    Ok(HttpResponse::Ok().json(FeedPage {
        count: page.count,
        next,
        previous,
        next_cursor,
        results: views.into_iter().map(|v| post_dto(v, &links)).collect(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Profiles and own posts

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based page number.
    pub page: Option<i64>,
    /// Items per page (1–`OASIS_MAX_PAGE_SIZE`, 100 by default; default 10).
    pub page_size: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileDto {
    pub id: i64,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub profile_pic: Option<String>,
    pub bio: String,
    pub is_creator: bool,
    pub follower_count: i64,
    pub post_count: i64,
    /// Whether the caller follows this user (false when anonymous).
    pub is_following: bool,
    pub tiers: Vec<TierDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfilePage {
    pub profile: ProfileDto,
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    /// The user's posts, newest first, locked ones with `body: null`.
    pub results: Vec<PostDto>,
}

/// At most this many tiers are shown on a profile.
const PROFILE_TIERS: i64 = 100;

/// A user's profile with a page of their posts (anonymous callers welcome).
#[utoipa::path(get, path = "/feed/api/user-profile/{id}", tag = "social",
    params(("id" = i64, Path), PageQuery), security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = ProfilePage), (status = 400), (status = 404)))]
async fn user_profile(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    user: MaybeAuthUser,
    id: web::Path<i64>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::pagination::page_request(&req, q.page, q.page_size)?;
    let (id, viewer) = (id.into_inner(), user.user_id());
    let crate::read_cache::ProfilePage {
        profile,
        tiers,
        posts,
    } = ctx
        .reads
        .profile_page(&ctx.db, id, viewer, PROFILE_TIERS, page)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let tiers = tiers.into_iter().map(|(t, n)| tier_dto(t, n)).collect();
    let links = MediaLinks::new(&req, &ctx.settings, viewer);
    let p = paginated(&req, page, posts.map(|v| post_dto(v, &links)))?;
    Ok(HttpResponse::Ok().json(ProfilePage {
        profile: ProfileDto {
            id: profile.id,
            username: profile.username,
            first_name: profile.first_name,
            last_name: profile.last_name,
            profile_pic: profile.profile_pic,
            bio: profile.bio,
            is_creator: profile.is_creator,
            follower_count: profile.follower_count,
            post_count: profile.post_count,
            is_following: profile.is_following,
            tiers,
        },
        count: p.count,
        next: p.next,
        previous: p.previous,
        results: p.results,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OwnPostsPage {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<PostDto>,
}

/// The caller's own posts, newest first (a creator's dashboard list).
#[utoipa::path(get, path = "/feed/api/get-posts", tag = "social", params(PageQuery),
    security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = OwnPostsPage), (status = 400), (status = 401)))]
async fn get_posts(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    user: AuthUser,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::pagination::page_request(&req, q.page, q.page_size)?;
    let me = user.user_id;
    let posts: Page<PostView> = ctx
        .db
        .run(move |c| {
            let ids = catalog_repo::list_post_ids(c, Some(me), page)?;
            let views = catalog_repo::load_post_views(c, &ids.results, Some(me))?;
            Ok(Page {
                count: ids.count,
                results: views,
            })
        })
        .await?;
    let links = MediaLinks::new(&req, &ctx.settings, Some(me));
    let p = paginated(&req, page, posts.map(|v| post_dto(v, &links)))?;
    Ok(HttpResponse::Ok().json(OwnPostsPage {
        count: p.count,
        next: p.next,
        previous: p.previous,
        results: p.results,
    }))
}

// ---------------------------------------------------------------------------------------------
// Search

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// 1–100 characters.
    pub q: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatorHitDto {
    pub id: i64,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub profile_pic: Option<String>,
    pub bio: String,
    pub follower_count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// Up to 10 creators whose username or name resembles the query, best first.
    pub creators: Vec<CreatorHitDto>,
    /// Up to 20 posts, best first. A post the caller may not read is matched (and ranked) by
    /// its title only and shown locked.
    pub posts: Vec<PostDto>,
}

/// Searches creators (trigram / partial names) and posts (full text).
#[utoipa::path(get, path = "/feed/api/search", tag = "social", params(SearchParams),
    security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = SearchResults),
        (status = 400, description = "`q` empty or longer than 100 characters")))]
async fn search(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    user: MaybeAuthUser,
    q: web::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let query = SearchQuery::parse(q.q.as_deref())?;
    let viewer = user.user_id();
    // A transaction only for `SET LOCAL` of the trigram threshold; nothing is written.
    let (creators, posts) = ctx
        .db
        .tx(move |c| {
            let creators = repo::search_creators(c, &query, SEARCH_CREATORS)?;
            let ids = repo::search_post_ids(c, &query, viewer.unwrap_or(0), SEARCH_POSTS)?;
            let posts = catalog_repo::load_post_views(c, &ids, viewer)?;
            Ok((creators, posts))
        })
        .await?;
    let links = MediaLinks::new(&req, &ctx.settings, viewer);
    Ok(HttpResponse::Ok().json(SearchResults {
        creators: creators
            .into_iter()
            .map(|h| CreatorHitDto {
                id: h.id,
                username: h.username,
                first_name: h.first_name,
                last_name: h.last_name,
                profile_pic: h.profile_pic,
                bio: h.bio,
                follower_count: h.follower_count,
            })
            .collect(),
        posts: posts.into_iter().map(|v| post_dto(v, &links)).collect(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Dashboards

/// An amount in minor units (paise, cents) of one currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyDto {
    pub amount: i64,
    /// `INR` or `USD`.
    pub currency: String,
}

fn money(v: Vec<Money>) -> Vec<MoneyDto> {
    v.into_iter()
        .map(|m| MoneyDto {
            amount: m.amount,
            currency: m.currency.code().to_owned(),
        })
        .collect()
}

/// A number of payments and their net sum per currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotalsDto {
    pub count: i64,
    pub amounts: Vec<MoneyDto>,
}

fn totals(t: Totals) -> TotalsDto {
    TotalsDto {
        count: t.count,
        amounts: money(t.amounts),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierStatsDto {
    pub id: i64,
    pub name: String,
    pub price: i64,
    pub currency: String,
    pub is_active: bool,
    /// Members whose membership currently gives access (free, paid-up, in grace).
    pub active_members: i64,
}

/// One UTC day of the dashboard series.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayDto {
    pub date: NaiveDate,
    /// Memberships started that day (past `created`/`authenticated`).
    pub new_members: i64,
    pub new_followers: i64,
    /// Net earnings received that day, per currency (empty = none).
    pub earnings: Vec<MoneyDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatorStatsDto {
    pub followers: i64,
    pub posts: i64,
    /// Distinct members with access to any of the creator's tiers.
    pub active_members: i64,
    pub tiers: Vec<TierStatsDto>,
    /// Monthly recurring revenue: active recurring memberships set to renew, per currency.
    pub mrr: Vec<MoneyDto>,
    /// Net of refunds, since the 1st of this month (UTC).
    pub earnings_this_month: TotalsDto,
    pub earnings_all_time: TotalsDto,
    /// What the creator keeps of `earnings_this_month`: after Razorpay's fee and the platform
    /// fee, net of refunds (the earnings ledger), per currency.
    pub net_earnings_this_month: Vec<MoneyDto>,
    /// What the creator keeps of `earnings_all_time`.
    pub net_earnings_all_time: Vec<MoneyDto>,
    /// Cheers received (count and net amount per currency).
    pub tips: TotalsDto,
    /// Received commission requests that are ordered, accepted or in progress.
    pub open_commissions: i64,
    /// Commission payments received (count and net amount per currency, refunds deducted).
    pub commissions: TotalsDto,
    /// The last 30 UTC days, oldest first, every day present.
    pub daily: Vec<DayDto>,
}

/// A creator's dashboard (creators only).
#[utoipa::path(get, path = "/feed/api/stats", tag = "social",
    security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = CreatorStatsDto), (status = 401),
        (status = 403, description = "not a creator")))]
async fn stats(ctx: web::Data<AppContext>, user: CreatorUser) -> Result<HttpResponse, ApiError> {
    let me = user.user_id;
    let days = oasis_social::stats::SERIES_DAYS;
    let s = ctx
        .db
        .run(move |c| Ok(repo::creator_stats(c, me, days)?))
        .await?;
    let today = Utc::now().date_naive();
    let daily = oasis_social::stats::fill_daily(today, days, &s.daily_counts, &s.daily_earnings);
    Ok(HttpResponse::Ok().json(CreatorStatsDto {
        followers: s.followers,
        posts: s.posts,
        active_members: s.active_members,
        tiers: s
            .tiers
            .into_iter()
            .map(|t| TierStatsDto {
                id: t.tier_id,
                name: t.name,
                price: t.price,
                currency: t.currency,
                is_active: t.is_active,
                active_members: t.active_members,
            })
            .collect(),
        mrr: money(s.mrr),
        earnings_this_month: totals(s.earnings_this_month),
        earnings_all_time: totals(s.earnings_all_time),
        net_earnings_this_month: money(s.net_earnings_this_month),
        net_earnings_all_time: money(s.net_earnings_all_time),
        tips: totals(s.tips),
        open_commissions: s.open_commissions,
        commissions: totals(s.commission_earnings),
        daily: daily
            .into_iter()
            .map(|d| DayDto {
                date: d.date,
                new_members: d.new_members,
                new_followers: d.new_followers,
                earnings: money(d.earnings),
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserStatsDto {
    pub following: i64,
    /// Memberships currently giving access.
    pub active_memberships: i64,
    /// Net of refunds, per currency.
    pub total_spent: TotalsDto,
    /// Cheers given.
    pub tips_given: TotalsDto,
    /// Paid commission orders.
    pub commissions_ordered: i64,
    /// The caller's commission requests per status (`{"ordered": 1, ...}`).
    #[schema(value_type = Object)]
    pub commissions: std::collections::BTreeMap<&'static str, i64>,
}

/// A fan's dashboard.
#[utoipa::path(get, path = "/feed/api/userstats", tag = "social",
    security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = UserStatsDto), (status = 401)))]
async fn userstats(ctx: web::Data<AppContext>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let me = user.user_id;
    let s = ctx.db.run(move |c| Ok(repo::user_stats(c, me)?)).await?;
    Ok(HttpResponse::Ok().json(UserStatsDto {
        following: s.following,
        active_memberships: s.active_memberships,
        total_spent: totals(s.total_spent),
        tips_given: totals(s.tips_given),
        commissions_ordered: s.commissions_ordered,
        commissions: s
            .commissions
            .into_iter()
            .map(|(status, n)| (status.as_str(), n))
            .collect(),
    }))
}
