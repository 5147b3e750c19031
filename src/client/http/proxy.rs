//! Which proxy a handle goes through, chosen from the environment the way the
//! Python client (requests) chooses it, so that a job script that works for
//! one works for the other:
//!
//! - an `http://` server uses `http_proxy` (or `HTTP_PROXY`), an `https://`
//!   server `https_proxy` (or `HTTPS_PROXY`); either falls back to
//!   `all_proxy` (or `ALL_PROXY`); the lower-case name wins, an empty value
//!   counts as unset;
//! - `no_proxy` (or `NO_PROXY`) lists what is reached directly: `*`, host
//!   names (`node1`), domain suffixes (`.cluster`, `cluster`), addresses
//!   (`10.1.2.3`, `::1`), CIDR blocks (`10.0.0.0/8`), each optionally with
//!   `:port`.
//!
//! ureq's own choice differs: it takes the first of `ALL_PROXY`,
//! `HTTPS_PROXY`, `HTTP_PROXY` whatever the server's scheme, so a cluster
//! that sets only `https_proxy` for the outside world would send the workers'
//! plain-HTTP traffic to that proxy, where the Python client goes directly.

use std::net::IpAddr;

use super::credentials::Secret;
use super::endpoint::{split_authority, Endpoint};
use crate::client::error::{Error, Result};

/// The proxy chosen for a handle: its URL (which may hold a password, so it
/// is a [`Secret`]) and the variable it came from, for messages.
#[derive(Debug, Clone)]
pub struct ProxySetting {
    /// The proxy's URL, as the variable holds it.
    pub url: Secret,
    /// The variable it came from (`http_proxy`, `HTTPS_PROXY`, ...).
    pub variable: String,
}

/// The proxy for `base_url` from the variables `env` gives, or `None` to
/// connect directly.
pub fn choose(base_url: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<ProxySetting> {
    let uri: ureq::http::Uri = base_url.parse().ok()?;
    let endpoint = Endpoint::of(&uri)?;
    let no_proxy = first_set(env, "no_proxy").map(|(_, v)| v);
    if no_proxy.is_some_and(|list| bypassed(&endpoint, &list)) {
        return None;
    }
    let (variable, url) = first_set(env, &format!("{}_proxy", endpoint.scheme))
        .or_else(|| first_set(env, "all_proxy"))?;
    Some(ProxySetting {
        url: Secret::new(url),
        variable,
    })
}

/// The chosen proxy as ureq takes it; an unusable URL is an error that names
/// the variable but not its value (it may hold a password).
pub fn for_agent(setting: Option<&ProxySetting>) -> Result<Option<ureq::Proxy>> {
    let Some(setting) = setting else {
        return Ok(None);
    };
    let unusable = || {
        Error::invalid_argument(format!(
            "the proxy in {} is not a usable proxy URL \
             (scheme://[user:password@]host[:port], scheme http, https, socks4, socks5; \
             a port is a number in 1..65535)",
            setting.variable
        ))
    };
    if !strict_host_and_port(setting.url.expose()) {
        return Err(unusable());
    }
    ureq::Proxy::new(setting.url.expose())
        .map(Some)
        .map_err(|_| unusable())
}

/// Whether the proxy URL's host and port are as strict as the server's
/// ([`split_authority`]): ureq reads `proxy:3l28` as port 80 (or 1080) of
/// `proxy`, which would send the proxy's password to another port.
fn strict_host_and_port(url: &str) -> bool {
    let with_scheme = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let Ok(uri) = with_scheme.parse::<ureq::http::Uri>() else {
        return false;
    };
    let Some(authority) = uri.authority() else {
        return false;
    };
    let host_port = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, after)| after);
    split_authority(host_port, 80).is_ok()
}

/// The lower-case variable if set and not empty, else the upper-case one.
fn first_set(env: &dyn Fn(&str) -> Option<String>, lower: &str) -> Option<(String, String)> {
    [lower.to_owned(), lower.to_ascii_uppercase()]
        .into_iter()
        .find_map(|name| {
            env(&name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (name, v))
        })
}

/// Whether the endpoint is listed in a `no_proxy` value (names compared
/// without regard to case).
fn bypassed(endpoint: &Endpoint, no_proxy: &str) -> bool {
    let host = endpoint.host.to_ascii_lowercase();
    let address = endpoint.ip();
    no_proxy
        .split(',')
        .map(|entry| entry.trim().to_ascii_lowercase())
        .filter(|entry| !entry.is_empty())
        .any(|entry| entry == "*" || entry_matches(&entry, &host, address, endpoint.port))
}

fn entry_matches(entry: &str, host: &str, address: Option<IpAddr>, port: u16) -> bool {
    if let Some((network, bits)) = entry.split_once('/') {
        return address.is_some_and(|a| in_network(a, network, bits));
    }
    let (name, entry_port) = split_port(entry);
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    if let (Some(a), Ok(listed)) = (address, name.parse::<IpAddr>()) {
        return a == listed;
    }
    let name = name.trim_start_matches('.');
    !name.is_empty()
        && (host == name
            || host
                .strip_suffix(name)
                .is_some_and(|rest| rest.ends_with('.')))
}

/// `name[:port]`, where name may be a bracketed or bare IPv6 address.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((address, after)) = rest.split_once(']') {
            return (
                address,
                after.strip_prefix(':').and_then(|p| p.parse().ok()),
            );
        }
    }
    if entry.matches(':').count() == 1 {
        if let Some((name, port)) = entry.split_once(':') {
            if let Ok(port) = port.parse() {
                return (name, Some(port));
            }
        }
    }
    (entry, None)
}

/// Whether `address` is in `network/bits` (both of one IP family).
fn in_network(address: IpAddr, network: &str, bits: &str) -> bool {
    let (Ok(network), Ok(bits)) = (network.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(url: &str, vars: &[(&str, &str)]) -> Option<(String, String)> {
        let env = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        };
        choose(url, &env).map(|p| (p.variable, p.url.expose().to_owned()))
    }

    /// A variable's name and value.
    type Var<'a> = (&'a str, &'a str);

    #[test]
    fn the_servers_scheme_picks_the_variable_as_requests_does() {
        let https_only = [("https_proxy", "http://p:3128")];
        let upper = [("HTTP_PROXY", "http://h:1"), ("ALL_PROXY", "http://a:2")];
        let both_cases = [
            ("http_proxy", "http://low:1"),
            ("HTTP_PROXY", "http://up:2"),
        ];
        let empty_lower = [("http_proxy", " "), ("HTTP_PROXY", "http://up:2")];
        let cases: [(&str, &[Var], Option<Var>); 7] = [
            ("http://tf:5000/api/", &https_only, None),
            (
                "https://tf/api/",
                &https_only,
                Some(("https_proxy", "http://p:3128")),
            ),
            (
                "http://tf:5000/api/",
                &upper,
                Some(("HTTP_PROXY", "http://h:1")),
            ),
            ("https://tf/api/", &upper, Some(("ALL_PROXY", "http://a:2"))),
            ("http://tf/api/", &[], None),
            // Lower case wins; an empty value counts as unset.
            (
                "http://tf/api/",
                &both_cases,
                Some(("http_proxy", "http://low:1")),
            ),
            (
                "http://tf/api/",
                &empty_lower,
                Some(("HTTP_PROXY", "http://up:2")),
            ),
        ];
        for (url, vars, expected) in cases {
            let expected = expected.map(|(v, u)| (v.to_owned(), u.to_owned()));
            assert_eq!(chosen(url, vars), expected, "{url} with {vars:?}");
        }
    }

    #[test]
    fn a_proxy_port_that_is_not_1_to_65535_is_refused() {
        let setting = |url: &str| ProxySetting {
            url: Secret::new(url),
            variable: "http_proxy".to_owned(),
        };
        for good in [
            "http://p:3128",
            "p:3128",
            "http://u:pw@p:3128/",
            "socks5://[::1]:1080",
        ] {
            assert!(for_agent(Some(&setting(good))).is_ok(), "{good}");
        }
        for bad in [
            "http://p:3l28",
            "p:abc",
            "http://u:s3cret@p:70000",
            "http://u:s3cret@p:",
            "http://p:-1",
            "http://[::1]x",
        ] {
            let err = for_agent(Some(&setting(bad))).unwrap_err();
            assert!(err.message().contains("http_proxy"), "{bad}: {err}");
            assert!(!err.message().contains("s3cret"), "{bad}: {err}");
        }
    }

    #[test]
    fn no_proxy_entries_bypass_the_proxy() {
        let p = ("http_proxy", "http://p:3128");
        let direct = |url: &str, list: &str| chosen(url, &[p, ("no_proxy", list)]).is_none();
        assert!(direct("http://tf.cluster:5000/api/", "*"));
        assert!(direct("http://tf.cluster:5000/api/", "other, tf.cluster"));
        assert!(direct("http://tf.cluster:5000/api/", ".cluster"));
        assert!(direct("http://tf.cluster:5000/api/", "cluster"));
        assert!(direct("http://TF.Cluster:5000/api/", "tf.cluster:5000"));
        assert!(!direct("http://tf.cluster:5000/api/", "tf.cluster:80"));
        assert!(!direct("http://notcluster:5000/api/", "cluster"));
        assert!(!direct("http://tf.cluster.org:5000/api/", "cluster"));
        assert!(direct("http://10.1.2.3:5000/api/", "10.1.2.3"));
        assert!(direct("http://10.1.2.3:5000/api/", "10.0.0.0/8"));
        assert!(!direct("http://11.1.2.3:5000/api/", "10.0.0.0/8"));
        assert!(direct("http://127.0.0.1:5000/api/", "127.0.0.1/32"));
        assert!(direct("http://[::1]:5000/api/", "::1"));
        assert!(direct("http://[::1]:5000/api/", "[::1]:5000"));
        assert!(direct("http://[fd00::7]:5000/api/", "fd00::/8"));
        assert!(!direct("http://10.1.2.3:5000/api/", "10.0.0.0/99, junk/8"));
        assert!(
            chosen("http://tf/api/", &[p, ("NO_PROXY", "tf")]).is_none(),
            "NO_PROXY counts when no_proxy is unset"
        );
    }
}
