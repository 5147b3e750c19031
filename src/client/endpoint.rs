//! Where a URL points: scheme, host and port, the port filled in from the
//! scheme. Shared by name resolution and the proxy choice.

use std::net::IpAddr;

use ureq::http::Uri;

/// The server end of an `http://` or `https://` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// `"http"` or `"https"`.
    pub scheme: &'static str,
    /// The host as written, without the brackets of an IPv6 address.
    pub host: &'a str,
    /// The port written in the URL, else the scheme's (80, 443).
    pub port: u16,
}

impl<'a> Endpoint<'a> {
    /// The endpoint of `uri`; `None` without a host or for another scheme.
    pub fn of(uri: &'a Uri) -> Option<Endpoint<'a>> {
        let (scheme, default_port) = match uri.scheme_str()? {
            "http" => ("http", 80),
            "https" => ("https", 443),
            _ => return None,
        };
        let authority = uri.authority()?;
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Some(Endpoint {
            scheme,
            host,
            port: authority.port_u16().unwrap_or(default_port),
        })
    }

    /// The host when it is an address (`127.0.0.1`, `[::1]`), not a name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Option<(&'static str, String, u16, Option<IpAddr>)> {
        let uri: Uri = url.parse().unwrap();
        Endpoint::of(&uri).map(|e| (e.scheme, e.host.to_owned(), e.port, e.ip()))
    }

    #[test]
    fn ports_come_from_the_url_or_the_scheme() {
        assert_eq!(
            endpoint("http://tf:5000/api/"),
            Some(("http", "tf".to_owned(), 5000, None))
        );
        assert_eq!(
            endpoint("https://10.1.2.3/api/"),
            Some(("https", "10.1.2.3".to_owned(), 443, "10.1.2.3".parse().ok()))
        );
        assert_eq!(
            endpoint("http://[::1]/"),
            Some(("http", "::1".to_owned(), 80, "::1".parse().ok()))
        );
        assert_eq!(endpoint("ftp://tf/"), None);
        assert_eq!(endpoint("/api/token"), None);
    }
}
