//! Where log lines go: stderr always and, with `--log-file`, the same lines (text or JSON) to a
//! file rotated by size. Rotation is the `file-rotate` crate: once the file passes
//! `--log-max-size` it is renamed `<file>.1` and gzip-compressed to `<file>.1.gz` (older ones
//! move up to `.2.gz`, …), and the oldest beyond `--log-max-files` is deleted. The file is cut
//! between two writes, and tracing writes each line whole, so no line is split across files.
//!
//! Secrets stay out of the log by construction, not by filtering here: handlers and services
//! never log a PIN, key or token, request headers that carry them are marked sensitive, and
//! this file writes exactly what stderr shows.

use crate::config::{LogFormat, ServeArgs};
use anyhow::Context;
use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Default filter when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info,tower_http=info,sqlx=warn";

/// A log file and its rotation limits (the `--log-*` flags, already range-checked by clap).
#[derive(Debug, Clone)]
pub struct LogFile {
    pub path: PathBuf,
    /// Rotate once the live file passes this many bytes.
    pub max_size: u64,
    /// Rotated (compressed) files kept beside the live one.
    pub max_files: usize,
}

impl LogFile {
    pub fn from_args(args: &ServeArgs) -> Option<LogFile> {
        args.log_file.as_ref().map(|path| LogFile {
            path: path.clone(),
            max_size: args.log_max_size,
            max_files: usize::from(args.log_max_files),
        })
    }
}

/// The writer behind `--log-file`. Opens (creating the directory) now, so a path that can't
/// be written stops the start with a clear error instead of losing every line silently.
pub fn rotating_file(spec: &LogFile) -> anyhow::Result<Mutex<FileRotate<AppendCount>>> {
    // Absolute, so rotation scans the right directory whatever the working directory becomes.
    let path = std::path::absolute(&spec.path)
        .with_context(|| format!("--log-file {}", spec.path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the log directory {}", dir.display()))?;
    }
    open_options()
        .open(&path)
        .with_context(|| format!("opening --log-file {}", path.display()))?;
    let max_size = usize::try_from(spec.max_size).unwrap_or(usize::MAX);
    Ok(Mutex::new(FileRotate::new(
        &path,
        AppendCount::new(spec.max_files),
        ContentLimit::BytesSurpassed(max_size),
        // Keep no rotated file uncompressed.
        Compression::OnRotate(0),
        Some(open_options()),
    )))
}

/// Read+append+create, as `file-rotate` requires; owner and group only (log lines name
/// devices and admins).
fn open_options() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.read(true).create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o640);
    }
    o
}

/// Install the global subscriber: stderr, plus the rotated file when one is given. Fails if
/// the file can't be opened, or if a subscriber is already installed.
pub fn init(format: LogFormat, file: Option<&LogFile>) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let file_layer = file
        .map(|spec| rotating_file(spec).map(|w| layer(format, w, false)))
        .transpose()?;
    tracing_subscriber::registry()
        .with(filter)
        .with(layer(format, std::io::stderr, true))
        .with(file_layer)
        .try_init()
        .context("installing the log subscriber")
}

fn layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    }
}

/// The rotated files of `path` that exist now (`<name>.N.gz`), newest first.
pub fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let n = file
                .strip_prefix(&name)?
                .strip_prefix('.')?
                .strip_suffix(".gz")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// With the smallest allowed size, enough lines rotate several times: rotated files are
    /// gzip, hold whole lines, and their count stays at `max_files`.
    #[test]
    fn rotates_by_size_compresses_and_keeps_a_bounded_count() {
        let dir = tempfile::tempdir().expect("tmp");
        let spec = LogFile {
            path: dir.path().join("logs").join("russet.log"),
            max_size: crate::config::LOG_MAX_SIZE_MIN,
            max_files: 3,
        };
        let writer = rotating_file(&spec).expect("opens");
        let line = format!("{}\n", "x".repeat(199));
        // 200 bytes a line, 1024 lines per 200KB file: about 8 files' worth.
        for i in 0..8_000 {
            let mut w = writer.lock().expect("lock");
            w.write_all(format!("{i:08} {line}").as_bytes())
                .expect("write");
        }
        drop(writer);
        let rotated = rotated_files(&spec.path);
        assert_eq!(rotated.len(), 3, "{rotated:?}");
        let live = std::fs::metadata(&spec.path).expect("live file").len();
        assert!(live <= spec.max_size + 256, "live file {live} bytes");
        for p in &rotated {
            let bytes = std::fs::read(p).expect("read");
            assert_eq!(&bytes[..2], &[0x1f, 0x8b], "{} is gzip", p.display());
            let mut text = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .expect("gunzip");
            assert!(text.len() as u64 > spec.max_size, "{} bytes", text.len());
            assert!(text.lines().all(|l| l.len() == 208), "whole lines only");
        }
        // The newest rotated file ends where the live file begins.
        let mut newest = String::new();
        flate2::read::GzDecoder::new(&std::fs::read(&rotated[0]).expect("read")[..])
            .read_to_string(&mut newest)
            .expect("gunzip");
        let last: u64 = newest.lines().last().expect("line")[..8]
            .parse()
            .expect("n");
        let live_text = std::fs::read_to_string(&spec.path).expect("live");
        let first: u64 = live_text.lines().next().expect("line")[..8]
            .parse()
            .expect("n");
        assert_eq!(first, last + 1);
    }

    #[test]
    fn an_unwritable_log_path_is_refused_at_start() {
        let dir = tempfile::tempdir().expect("tmp");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"").expect("write");
        let spec = LogFile {
            path: blocker.join("russet.log"),
            max_size: crate::config::LOG_MAX_SIZE_MIN,
            max_files: 1,
        };
        let Err(e) = rotating_file(&spec) else {
            panic!("a file is not a directory");
        };
        assert!(format!("{e:#}").contains("log"), "{e:#}");
    }
}
