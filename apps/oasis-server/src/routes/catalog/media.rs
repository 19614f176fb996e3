//! `/content/api/media/`: uploads (multipart, recognised by content, stored by SHA-256 under
//! `$OASIS_DATA_DIR/media`) and authorised downloads.
//!
//! Download URLs handed out in posts are signed (HMAC-SHA256 of media id, viewer and expiry with a
//! key derived from `OASIS_SECRET_KEY`) and bound to the viewer they were issued to. Every
//! download re-applies the visibility rule for that viewer, so a leaked URL of a locked attachment
//! stops working as soon as the viewer loses access (and in any case when it expires, ≤ 70 min).
use super::dto::{media_dto, MediaDto, UploadForm};
use super::links::{link_key, message, MediaLinks};
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::config::Settings;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::web;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use oasis_catalog::media::{self as rules, FileType, MediaKind};
use oasis_catalog::{can_view, Media};
use oasis_db::catalog as repo;
use std::cell::Cell;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// Viewer the link was issued to (0 = anonymous).
    pub v: Option<i64>,
    /// Expiry, Unix seconds.
    pub exp: Option<i64>,
    /// HMAC-SHA256 signature, hex.
    pub sig: Option<String>,
}

fn link_invalid() -> ApiError {
    ApiError::detail(
        StatusCode::FORBIDDEN,
        "link_invalid",
        "This download link is invalid or has expired.",
    )
}

/// The viewer a download is for: the signed link's viewer, else the authenticated caller.
fn link_viewer(
    settings: &Settings,
    media_id: i64,
    q: &LinkQuery,
    user: &MaybeAuthUser,
) -> Result<Option<i64>, ApiError> {
    let Some(sig) = &q.sig else {
        return Ok(user.user_id());
    };
    let (Some(v), Some(exp)) = (q.v, q.exp) else {
        return Err(link_invalid());
    };
    let sig = hex::decode(sig).map_err(|_| link_invalid())?;
    ring::hmac::verify(
        &link_key(settings),
        message(media_id, v, exp).as_bytes(),
        &sig,
    )
    .map_err(|_| link_invalid())?;
    if exp < chrono::Utc::now().timestamp() {
        return Err(link_invalid());
    }
    Ok((v != 0).then_some(v))
}

/// May `viewer` fetch this media? Its uploader always; anyone while it is the uploader's
/// profile picture (an image whose URL is their `profile_pic`); the two parties of a commission
/// request it was delivered with; others only through a post they may see (`can_view`). Media attached to no post is not found for anybody else (404: its
/// existence is nobody's business); media attached only to posts the viewer may not see is
/// locked (403, like the post, which shows the attachment's id and type).
fn check_media_access(
    c: &mut diesel::PgConnection,
    m: &Media,
    viewer: Option<i64>,
) -> Result<(), ApiError> {
    if viewer == Some(m.owner_id) || is_profile_picture(c, m)? {
        return Ok(());
    }
    // A commission's delivered file: its fan and its creator only.
    if let Some(v) = viewer {
        if oasis_db::commissions::delivery_parties(c, m.id)?.contains(&v) {
            return Ok(());
        }
    }
    let gates = repo::media_post_gates(c, m.id)?;
    if gates.is_empty() {
        return Err(ApiError::not_found());
    }
    let access = match viewer {
        Some(v) => {
            let tiers: Vec<i64> = gates
                .iter()
                .filter(|g| g.creator_id != v)
                .flat_map(|g| g.tier_ids.iter().copied())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            repo::tiers_with_access(c, v, &tiers)?
        }
        None => HashSet::new(),
    };
    if gates
        .iter()
        .any(|g| can_view(g.creator_id, &g.tier_ids, viewer, &access))
    {
        Ok(())
    } else {
        Err(oasis_catalog::CatalogError::Locked.into())
    }
}

/// Is this image its uploader's (active account's) profile picture? Only the uploader's own
/// `profile_pic` counts: anyone can point theirs at any URL.
fn is_profile_picture(c: &mut diesel::PgConnection, m: &Media) -> Result<bool, ApiError> {
    use oasis_identity::IdentityRepo;
    if m.kind != MediaKind::Image {
        return Ok(false);
    }
    let owner = oasis_db::identity::PgIdentity(c).user_by_id(m.owner_id)?;
    Ok(owner
        .filter(|u| u.is_active)
        .and_then(|u| u.profile_pic)
        .is_some_and(|pic| names_media(&pic, m.id)))
}

/// Does a URL (absolute, or a bare path) name this media's file (`/content/api/media/<id>/file`,
/// on whatever origin: the public URL may have changed since it was set)?
fn names_media(url: &str, media_id: i64) -> bool {
    let path = match url::Url::parse(url) {
        Ok(u) => u.path().to_owned(),
        Err(_) => url.split(['?', '#']).next().unwrap_or("").to_owned(),
    };
    path.trim_end_matches('/')
        .ends_with(&format!("/content/api/media/{media_id}/file"))
}

fn media_dir(settings: &Settings) -> PathBuf {
    settings.data_dir.join("media")
}

/// Where the bytes of a hash live.
pub fn media_path(settings: &Settings, sha256: &str) -> PathBuf {
    media_dir(settings).join(&sha256[..2]).join(sha256)
}

/// Removes the temporary file unless the upload succeeded.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn too_large(limit: u64, what: &str) -> ApiError {
    ApiError::detail(
        StatusCode::PAYLOAD_TOO_LARGE,
        "file_too_large",
        format!("The file is larger than {limit} bytes, the limit for {what}."),
    )
}

fn unsupported() -> ApiError {
    ApiError::detail(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_file_type",
        "Unsupported file type: upload a JPEG, PNG, WebP or GIF image, or a PDF, ZIP or audio (MP3, OGG, WAV, FLAC, M4A) file.",
    )
}

fn malformed(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_upload", detail)
}

fn multipart_error(e: actix_multipart::MultipartError) -> ApiError {
    use actix_multipart::MultipartError as E;
    match e {
        E::ContentTypeMissing | E::ContentTypeParse | E::ContentTypeIncompatible => {
            ApiError::detail(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the file as multipart/form-data in a part named `file`.",
            )
        }
        other => malformed(format!("The upload is incomplete or malformed: {other}.")),
    }
}

fn clean_filename(name: Option<&str>) -> String {
    let name = name.unwrap_or("");
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    base.chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Marks when the request body has ended. actix-multipart 0.7 can wait forever on a body cut
/// off inside a boundary (it answers `Pending` after the end of the payload); once the body has
/// ended, `Pending` can only mean that, so [`next_part`] turns it into a 400.
struct EofPayload {
    inner: web::Payload,
    ended: Rc<Cell<bool>>,
}

impl futures_util::Stream for EofPayload {
    type Item = Result<web::Bytes, actix_web::error::PayloadError>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        if let std::task::Poll::Ready(None) = r {
            self.ended.set(true);
        }
        r
    }
}

/// The next item of a multipart stream, or an error when the parser is stuck after the end of
/// the body.
async fn next_part<S, T>(
    s: &mut S,
    ended: &Cell<bool>,
) -> Option<Result<T, actix_multipart::MultipartError>>
where
    S: futures_util::Stream<Item = Result<T, actix_multipart::MultipartError>> + Unpin,
{
    std::future::poll_fn(|cx| match s.poll_next_unpin(cx) {
        std::task::Poll::Pending if ended.get() => {
            std::task::Poll::Ready(Some(Err(actix_multipart::MultipartError::Incomplete)))
        }
        other => other,
    })
    .await
}

/// What a received file turned out to be.
struct Received {
    sha256: String,
    ftype: FileType,
    size: u64,
    filename: String,
    temp: TempFile,
}

/// Streams one part into a temporary file, hashing it and enforcing type and size as it goes.
async fn receive(
    field: &mut actix_multipart::Field,
    ended: &Cell<bool>,
    tmp_dir: PathBuf,
    max_image: u64,
    max_attachment: u64,
) -> Result<Received, ApiError> {
    let filename = clean_filename(field.content_disposition().and_then(|cd| cd.get_filename()));
    let path = tmp_dir.join(format!("upload-{}", uuid::Uuid::new_v4()));
    let p = path.clone();
    let file = web::block(move || {
        std::fs::create_dir_all(&tmp_dir)?;
        std::fs::File::create(&p)
    })
    .await?
    .map_err(ApiError::internal)?;
    let temp = TempFile { path, keep: false };
    let mut file = Some(file);
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    let mut head: Vec<u8> = Vec::with_capacity(rules::SNIFF_LEN);
    let mut tail: Vec<u8> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut size: u64 = 0;
    let mut ftype: Option<FileType> = None;
    let mut limit = max_image.max(max_attachment);
    const FLUSH: usize = 1 << 20;

    loop {
        let chunk = match next_part(field, ended).await {
            Some(c) => c.map_err(multipart_error)?,
            None => break,
        };
        size += chunk.len() as u64;
        if head.len() < rules::SNIFF_LEN {
            let need = rules::SNIFF_LEN - head.len();
            head.extend_from_slice(&chunk[..need.min(chunk.len())]);
            if head.len() >= rules::SNIFF_LEN {
                let t = rules::sniff(&head).ok_or_else(unsupported)?;
                limit = rules::max_bytes(t.kind, max_image, max_attachment);
                ftype = Some(t);
            }
        }
        if size > limit {
            return Err(match ftype {
                Some(t) if t.kind == MediaKind::Image => too_large(limit, "images"),
                Some(_) => too_large(limit, "attachments"),
                None => too_large(limit, "uploads"),
            });
        }
        hasher.update(&chunk);
        tail.extend_from_slice(&chunk);
        if tail.len() > 2 * rules::TAIL_LEN {
            tail.drain(..tail.len() - rules::TAIL_LEN);
        }
        buf.extend_from_slice(&chunk);
        if buf.len() >= FLUSH {
            let (mut f, b) = (file.take().expect("file"), std::mem::take(&mut buf));
            let f = web::block(move || f.write_all(&b).map(|_| f))
                .await?
                .map_err(ApiError::internal)?;
            file = Some(f);
        }
    }
    if size == 0 {
        return Err(malformed("The submitted file is empty."));
    }
    let ftype = match ftype {
        Some(t) => t,
        None => rules::sniff(&head).ok_or_else(unsupported)?,
    };
    if size > rules::max_bytes(ftype.kind, max_image, max_attachment) {
        return Err(too_large(limit, "this file type"));
    }
    if tail.len() > rules::TAIL_LEN {
        tail.drain(..tail.len() - rules::TAIL_LEN);
    }
    if !rules::looks_complete(ftype, &head, &tail, size) {
        return Err(malformed(format!(
            "The {} file is truncated or corrupt.",
            ftype.ext.to_uppercase()
        )));
    }
    let mut f = file.take().expect("file");
    web::block(move || {
        f.write_all(&buf)?;
        f.sync_all()
    })
    .await?
    .map_err(ApiError::internal)?;
    Ok(Received {
        sha256: hex::encode(hasher.finish().as_ref()),
        ftype,
        size,
        filename,
        temp,
    })
}

/// Moves a received file to its content-addressed place (a file with the same hash is kept).
fn store(settings: &Settings, r: &mut Received) -> std::io::Result<()> {
    let dest = media_path(settings, &r.sha256);
    if dest.exists() {
        return Ok(()); // the temp file is removed on drop
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(&r.temp.path, &dest)?;
    r.temp.keep = true;
    Ok(())
}

/// Uploads one file (multipart part `file`). Images (JPEG, PNG, WebP, GIF) up to
/// OASIS_MAX_IMAGE_BYTES; PDF, ZIP and audio up to OASIS_MAX_ATTACHMENT_BYTES. The type is
/// recognised from the content; oversized (413), unsupported (415) or truncated (400) uploads
/// store nothing.
#[utoipa::path(post, path = "/content/api/media/", tag = "catalog",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("token" = []), ("jwt" = [])),
    responses((status = 201, body = MediaDto), (status = 400, description = "truncated, empty or malformed"),
        (status = 401), (status = 413, description = "too large"), (status = 415, description = "unsupported type")))]
pub async fn upload(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    user: AuthUser,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let settings = ctx.settings.clone();
    let max_image = settings.max_image_bytes as u64;
    let max_attachment = settings.max_attachment_bytes as u64;
    let ceiling = max_image.max(max_attachment);
    // Refuse what cannot fit before reading it (multipart overhead allowance: 64 KiB).
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > ceiling + 65_536 {
            return Err(too_large(ceiling, "uploads"));
        }
    }
    let ended = Rc::new(Cell::new(false));
    let payload = EofPayload {
        inner: payload,
        ended: ended.clone(),
    };
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let tmp_dir = media_dir(&settings).join("tmp");
    let mut received: Option<Received> = None;
    let mut result: Result<(), ApiError> = Ok(());
    let mut other_bytes = 0usize;
    while let Some(field) = next_part(&mut form, &ended).await {
        let mut field = match field {
            Ok(f) => f,
            Err(e) => {
                result = Err(multipart_error(e));
                break;
            }
        };
        if field.name() == Some("file") && received.is_none() {
            match receive(
                &mut field,
                &ended,
                tmp_dir.clone(),
                max_image,
                max_attachment,
            )
            .await
            {
                Ok(r) => received = Some(r),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        } else {
            // Other parts are read and ignored, bounded all together (64 KiB; each part's
            // headers count as 1 KiB), so that endless small parts cannot keep the request going.
            other_bytes += 1024;
            loop {
                if other_bytes > 65_536 {
                    result = Err(malformed("Only one part, `file`, is expected."));
                    break;
                }
                match next_part(&mut field, &ended).await {
                    Some(Ok(c)) => other_bytes += c.len(),
                    Some(Err(e)) => {
                        result = Err(multipart_error(e));
                        break;
                    }
                    None => break,
                }
            }
            if result.is_err() {
                break;
            }
        }
    }
    result?;
    let Some(mut r) = received else {
        return Err(ApiError::field("file", "No file was submitted."));
    };
    let owner = user.user_id;
    let settings2 = settings.clone();
    let m = ctx
        .db
        .run(move |c| {
            store(&settings2, &mut r).map_err(ApiError::internal)?;
            Ok(repo::insert_media(
                c,
                owner,
                &r.sha256,
                r.ftype.kind,
                r.ftype.content_type,
                r.size as i64,
                &r.filename,
            )?)
        })
        .await?;
    let links = MediaLinks::new(&req, &settings, Some(owner));
    Ok(HttpResponse::Created().json(media_dto(m, &links)))
}

/// A media row's details, for viewers who may fetch it.
#[utoipa::path(get, path = "/content/api/media/{id}/", tag = "catalog",
    params(("id" = i64, Path)), security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = MediaDto), (status = 403, description = "attached to locked posts only"),
        (status = 404, description = "no such media, or (for anyone but its uploader) attached to no post and not the uploader's profile picture")))]
pub async fn retrieve(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    user: MaybeAuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, viewer) = (id.into_inner(), user.user_id());
    let m = ctx
        .db
        .run(move |c| {
            let m = repo::find_media(c, id)?.ok_or_else(ApiError::not_found)?;
            check_media_access(c, &m, viewer)?;
            Ok(m)
        })
        .await?;
    let links = MediaLinks::new(&req, &ctx.settings, viewer);
    Ok(HttpResponse::Ok().json(media_dto(m, &links)))
}

fn read_chunk(path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0; len];
    let mut filled = 0;
    while filled < len {
        let n = f.read(&mut buf[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Downloads a file: with a signed link (`v`, `exp`, `sig`) for the viewer it was issued to,
/// or with the caller's credentials. The visibility rule is checked on every download.
#[utoipa::path(get, path = "/content/api/media/{id}/file", tag = "catalog",
    params(("id" = i64, Path), LinkQuery), security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, description = "the file's bytes, served with the type it was sniffed as at upload (image/jpeg, image/png, image/webp, image/gif, application/pdf, application/zip, audio/*)", content_type = "*/*"),
        (status = 403, description = "invalid/expired link (`link_invalid`) or locked (`post_locked`)"),
        (status = 404)))]
pub async fn download(
    ctx: web::Data<AppContext>,
    user: MaybeAuthUser,
    id: web::Path<i64>,
    q: web::Query<LinkQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let viewer = link_viewer(&ctx.settings, id, &q, &user)?;
    let m = ctx
        .db
        .run(move |c| {
            let m = repo::find_media(c, id)?.ok_or_else(ApiError::not_found)?;
            check_media_access(c, &m, viewer)?;
            Ok(m)
        })
        .await?;
    let path = media_path(&ctx.settings, &m.sha256);
    const CHUNK: usize = 256 * 1024;
    let size = m.size as u64;
    let stream = futures_util::stream::unfold(0u64, move |offset| {
        let path = path.clone();
        async move {
            if offset >= size {
                return None;
            }
            let r = web::block(move || read_chunk(&path, offset, CHUNK)).await;
            match r {
                Ok(Ok(bytes)) if !bytes.is_empty() => {
                    let n = bytes.len() as u64;
                    Some((Ok(web::Bytes::from(bytes)), offset + n))
                }
                Ok(Ok(_)) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "stored file is shorter than recorded",
                    )),
                    size,
                )),
                Ok(Err(e)) => Some((Err(e), size)),
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), size)),
            }
        }
    });
    let disposition = match m.kind {
        MediaKind::Image => "inline",
        MediaKind::Attachment => "attachment",
    };
    let filename: String = m
        .filename
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| *c != '"' && *c != '\\')
        .collect();
    let filename = if filename.is_empty() {
        format!("file-{}", m.id)
    } else {
        filename
    };
    Ok(HttpResponse::Ok()
        .content_type(m.content_type.as_str())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("{disposition}; filename=\"{filename}\""),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .insert_header((header::ETAG, format!("\"{}\"", m.sha256)))
        .body(actix_web::body::SizedStream::new(size, stream)))
}
