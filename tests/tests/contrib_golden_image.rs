//! `contrib/golden-image-install.sh`, the script Mac admins deploy to fetch the golden image
//! Russet assigned (README, "Golden images"), run here on Linux as far as it can be: it reads
//! the managed preferences (python3's plistlib stands in for PlistBuddy), downloads the image
//! from a local HTTP server with curl, checks the SHA-256, keeps a verified copy and refuses a
//! wrong checksum or another architecture. Registering with Parallels Desktop (`prlctl`)
//! needs a Mac: the script's `--no-register` path stops before it.

use axum::Router;
use axum::routing::get;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/golden-image-install.sh")
}

/// Serves `image` at `/images/dev.pvmp`, counting the downloads.
async fn serve(image: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let image = Arc::new(image);
    let app = Router::new().route(
        "/images/dev.pvmp",
        get(move || {
            let (image, counted) = (image.clone(), counted.clone());
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                image.as_ref().clone()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/images/dev.pvmp"), hits)
}

/// The managed preferences Russet delivers, as macOS writes them.
fn prefs(dir: &Path, url: &str, sha: &str, arch: &str) -> PathBuf {
    let mut d = plist::Dictionary::new();
    d.insert("Name".into(), "Dev VM".into());
    d.insert("Description".into(), "needs VPN".into());
    d.insert("URL".into(), url.into());
    d.insert("SHA256".into(), sha.into());
    d.insert("Architecture".into(), arch.into());
    let path = dir.join("org.russet.golden-image.plist");
    plist::Value::Dictionary(d).to_file_xml(&path).unwrap();
    path
}

fn run(prefs: &Path, cache: &Path) -> (i32, String, String) {
    let out = Command::new("bash")
        .arg(script())
        .args(["--no-register", "--prefs"])
        .arg(prefs)
        .arg("--cache")
        .arg(cache)
        .output()
        .expect("bash runs the script");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn machine() -> String {
    let out = Command::new("uname").arg("-m").output().expect("uname");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_script_downloads_verifies_and_refuses_a_wrong_checksum() {
    // Three MiB of not-quite-random bytes: a real download, streamed by curl.
    let image: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let sha: String = openssl::sha::sha256(&image)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (url, hits) = serve(image.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let arch = machine();

    // The right checksum (given in capitals, as some tools print it): downloaded, verified.
    let p = prefs(dir.path(), &url, &sha.to_uppercase(), &arch);
    let (code, stdout, stderr) = tokio::task::spawn_blocking({
        let (p, cache) = (p.clone(), cache.clone());
        move || run(&p, &cache)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");
    let file = cache.join("dev.pvmp");
    assert_eq!(stdout.trim(), file.display().to_string());
    assert_eq!(std::fs::read(&file).unwrap(), image);
    assert!(stderr.contains("verified SHA-256"), "{stderr}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Run again: the verified copy is used, nothing is downloaded.
    let (code, _, stderr) = tokio::task::spawn_blocking({
        let (p, cache) = (p.clone(), cache.clone());
        move || run(&p, &cache)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("already here and verified"), "{stderr}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // The admin changed the checksum (a new image at the same URL, but the bytes are old): a
    // mismatch, exit 2, the file deleted.
    let wrong = "0".repeat(64);
    let p = prefs(dir.path(), &url, &wrong, &arch);
    let (code, _, stderr) = tokio::task::spawn_blocking({
        let (p, cache) = (p.clone(), cache.clone());
        move || run(&p, &cache)
    })
    .await
    .unwrap();
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("SHA-256 mismatch"), "{stderr}");
    assert!(!file.exists(), "a file that failed its checksum is deleted");

    // An image for the other architecture is refused before any download.
    let other = if arch == "arm64" { "x86_64" } else { "arm64" };
    let p = prefs(dir.path(), &url, &sha, other);
    let before = hits.load(Ordering::SeqCst);
    let (code, _, stderr) = tokio::task::spawn_blocking({
        let (p, cache) = (p.clone(), cache.clone());
        move || run(&p, &cache)
    })
    .await
    .unwrap();
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(hits.load(Ordering::SeqCst), before);

    // Nothing assigned: nothing to do.
    let (code, _, stderr) = run(&dir.path().join("absent.plist"), &cache);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("no golden image"), "{stderr}");

    // A URL that is not http(s) is refused.
    let p = prefs(dir.path(), "file:///etc/passwd", &sha, &arch);
    let (code, _, stderr) = run(&p, &cache);
    assert_eq!(code, 1, "{stderr}");
}
