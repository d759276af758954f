//! Who the client is: the peer address, or what a trusted proxy says in
//! `Forwarded` / `X-Forwarded-*`. Nobody's headers are believed unless the peer is in
//! `[server] trusted_proxies` (Keystone ignores them unless told to parse them), so a
//! client can neither rewrite our links nor pose as another address.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// Whether the direct peer is a configured proxy.
pub fn from_trusted_proxy(req: &HttpRequest, trusted: &[IpNet]) -> bool {
    !trusted.is_empty()
        && req
            .peer_addr()
            .is_some_and(|p| trusted.iter().any(|n| n.contains(&p.ip())))
}

/// The client's address: the peer's, or, behind trusted proxies, the last
/// `X-Forwarded-For` entry that is not itself a trusted proxy (entries further left
/// were written by the client and prove nothing).
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !from_trusted_proxy(req, trusted) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|a| !trusted.iter().any(|n| n.contains(a)))
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("net")).collect()
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.5:40000".parse().expect("addr"))
            .insert_header(("X-Forwarded-For", "6.6.6.6, 192.0.2.7"))
            .to_http_request();
        assert_eq!(client_ip(&req, &[]), "10.0.0.5".parse().ok());
        assert_eq!(
            client_ip(&req, &nets(&["10.0.0.0/8"])),
            "192.0.2.7".parse().ok()
        );
        // A chain of trusted proxies: the first untrusted hop from the right.
        assert_eq!(
            client_ip(&req, &nets(&["10.0.0.0/8", "192.0.2.0/24"])),
            "6.6.6.6".parse().ok()
        );
    }
}
