//! Certificate authorities for `https://` URLs: the system's roots, plus the
//! PEM bundle named by `TASKFARM_CA_FILE`.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ureq::tls::{parse_pem, Certificate, PemItem, RootCerts, TlsConfig};

use crate::client::error::{Error, Result};

/// The largest CA bundle read (4 MiB): Debian's bundle of every trusted
/// root is about 220 KB. A bigger file, or one that is not a regular file
/// (`/dev/zero`, a FIFO, a directory), is refused before it is read.
pub const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Where Linux distributions keep the system's CA bundle (Debian/Ubuntu,
/// Fedora/RHEL, openSUSE, Alpine).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The TLS settings of a handle: the system's roots (`SSL_CERT_FILE`, or the
/// distribution's bundle) plus the certificates of `ca_file`. Mozilla's roots,
/// built into the library, are used only when neither gives a certificate.
pub(crate) fn tls_config(ca_file: Option<&Path>) -> Result<TlsConfig> {
    let mut roots = system_roots();
    if let Some(path) = ca_file {
        let extra = read_certificates(path).map_err(|why| {
            Error::invalid_argument(format!("TASKFARM_CA_FILE {}: {why}", path.display()))
        })?;
        roots.extend(extra);
    }
    let root_certs = if roots.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::new_with_certs(&roots)
    };
    Ok(TlsConfig::builder().root_certs(root_certs).build())
}

fn system_roots() -> Vec<Certificate<'static>> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let candidates = from_env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(std::path::PathBuf::from));
    for path in candidates {
        if let Ok(certs) = read_certificates(&path) {
            return certs;
        }
    }
    Vec::new()
}

fn read_certificates(path: &Path) -> std::result::Result<Vec<Certificate<'static>>, String> {
    let pem = read_bounded(path)?;
    let mut certs = Vec::new();
    for item in parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(format!("is not a valid PEM file ({e})")),
        }
    }
    if certs.is_empty() {
        return Err("holds no PEM certificate".to_owned());
    }
    Ok(certs)
}

/// The contents of the regular file `path`, at most [`MAX_CA_FILE_BYTES`].
/// Opened without blocking (a FIFO would wait for a writer for ever), then
/// checked on the open file, then read through a limit (a file may grow).
fn read_bounded(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot be read ({e})"))?;
    let metadata = file
        .metadata()
        .map_err(|e| format!("cannot be examined ({e})"))?;
    if metadata.is_dir() {
        return Err("is a directory, not a PEM file".to_owned());
    }
    if !metadata.is_file() {
        return Err("is not a regular file (a device, FIFO or socket), not a PEM file".to_owned());
    }
    let too_big = |size: u64| {
        format!("is {size} bytes, more than the {MAX_CA_FILE_BYTES} bytes a CA bundle may have")
    };
    if metadata.len() > MAX_CA_FILE_BYTES {
        return Err(too_big(metadata.len()));
    }
    let mut pem = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(|e| format!("cannot be read ({e})"))?;
    if pem.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(too_big(pem.len() as u64));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_file_of_sane_size_is_read() {
        let dir = std::env::temp_dir().join(format!("tf-ca-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.pem");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_CA_FILE_BYTES + 1)
            .unwrap();
        let fifo = dir.join("fifo");
        let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
        for (path, why) in [
            (Path::new("/dev/zero"), "not a regular file"),
            (fifo.as_path(), "not a regular file"),
            (dir.as_path(), "is a directory"),
            (big.as_path(), "more than the 4194304 bytes"),
            (Path::new("/nonexistent/ca.pem"), "cannot be read"),
        ] {
            let err = read_certificates(path).unwrap_err();
            assert!(err.contains(why), "{}: {err}", path.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
