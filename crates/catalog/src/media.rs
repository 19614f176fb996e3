//! Upload rules: what a file is (by its bytes, never its name), how large it may be, and whether
//! it arrived whole.

/// Images (JPEG, PNG, WebP, GIF: shown inline, usable as `profile_pic`) or attachments
/// (PDF, ZIP, audio: downloaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Attachment,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Attachment => "attachment",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(MediaKind::Image),
            "attachment" => Some(MediaKind::Attachment),
            _ => None,
        }
    }
}

/// A recognised file type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileType {
    pub content_type: &'static str,
    pub kind: MediaKind,
    pub ext: &'static str,
}

/// Bytes needed to recognise a type.
pub const SNIFF_LEN: usize = 16;
/// Bytes of the end of a file kept to check it is complete (ZIP's end record may carry a
/// comment of up to 64 KiB).
pub const TAIL_LEN: usize = 65_536 + 22;

const fn ft(content_type: &'static str, kind: MediaKind, ext: &'static str) -> FileType {
    FileType {
        content_type,
        kind,
        ext,
    }
}

/// Recognises a file by its first bytes (at least [`SNIFF_LEN`] when the file is that long).
pub fn sniff(head: &[u8]) -> Option<FileType> {
    use MediaKind::*;
    let h = head;
    if h.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(ft("image/jpeg", Image, "jpg"));
    }
    if h.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(ft("image/png", Image, "png"));
    }
    if h.starts_with(b"GIF87a") || h.starts_with(b"GIF89a") {
        return Some(ft("image/gif", Image, "gif"));
    }
    if h.len() >= 12 && &h[0..4] == b"RIFF" && &h[8..12] == b"WEBP" {
        return Some(ft("image/webp", Image, "webp"));
    }
    if h.len() >= 12 && &h[0..4] == b"RIFF" && &h[8..12] == b"WAVE" {
        return Some(ft("audio/wav", Attachment, "wav"));
    }
    if h.starts_with(b"%PDF-") {
        return Some(ft("application/pdf", Attachment, "pdf"));
    }
    if h.starts_with(b"PK\x03\x04") || h.starts_with(b"PK\x05\x06") {
        return Some(ft("application/zip", Attachment, "zip"));
    }
    if h.starts_with(b"ID3") || (h.len() >= 2 && h[0] == 0xFF && (h[1] & 0xE0) == 0xE0) {
        return Some(ft("audio/mpeg", Attachment, "mp3"));
    }
    if h.starts_with(b"OggS") {
        return Some(ft("audio/ogg", Attachment, "ogg"));
    }
    if h.starts_with(b"fLaC") {
        return Some(ft("audio/flac", Attachment, "flac"));
    }
    if h.len() >= 12 && &h[4..8] == b"ftyp" && (&h[8..11] == b"M4A" || &h[8..11] == b"M4B") {
        return Some(ft("audio/mp4", Attachment, "m4a"));
    }
    None
}

/// Largest size allowed for a kind.
pub fn max_bytes(kind: MediaKind, max_image: u64, max_attachment: u64) -> u64 {
    match kind {
        MediaKind::Image => max_image,
        MediaKind::Attachment => max_attachment,
    }
}

fn riff_complete(head: &[u8], len: u64) -> bool {
    head.len() >= 8 && {
        let declared = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as u64;
        // RIFF chunks are padded to an even size.
        len >= declared + 8
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Did the whole file arrive? Checks the format's end marker (`tail` = the last bytes, up to
/// [`TAIL_LEN`]; `head` = the first bytes; `len` = total size). Formats without an end marker
/// (MP3, OGG, FLAC, M4A) pass.
pub fn looks_complete(t: FileType, head: &[u8], tail: &[u8], len: u64) -> bool {
    let trimmed = {
        let mut end = tail.len();
        while end > 0 && matches!(tail[end - 1], b'\r' | b'\n' | b' ' | b'\t' | 0) {
            end -= 1;
        }
        &tail[..end]
    };
    match t.content_type {
        "image/jpeg" => tail.ends_with(&[0xFF, 0xD9]) || trimmed.ends_with(&[0xFF, 0xD9]),
        // IEND chunk: length 0, "IEND", CRC AE 42 60 82.
        "image/png" => tail.ends_with(b"\0\0\0\0IEND\xAE\x42\x60\x82"),
        "image/gif" => tail.last() == Some(&0x3B),
        "image/webp" | "audio/wav" => riff_complete(head, len),
        "application/pdf" => {
            let start = trimmed.len().saturating_sub(1024);
            find(&trimmed[start..], b"%%EOF").is_some()
        }
        "application/zip" => match find(tail, b"PK\x05\x06") {
            // End of central directory: 22 bytes + comment length.
            Some(pos) if tail.len() >= pos + 22 => {
                let comment = u16::from_le_bytes([tail[pos + 20], tail[pos + 21]]) as usize;
                tail.len() == pos + 22 + comment
            }
            _ => false,
        },
        _ => true,
    }
}
