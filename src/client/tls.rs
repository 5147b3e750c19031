//! Certificate authorities for `https://` URLs: the system's roots, plus the
//! PEM bundle named by `TASKFARM_CA_FILE`.

use std::path::Path;

use ureq::tls::{parse_pem, Certificate, PemItem, RootCerts, TlsConfig};

use super::error::{Error, Result};

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
    let pem = std::fs::read(path).map_err(|e| format!("cannot be read ({e})"))?;
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
