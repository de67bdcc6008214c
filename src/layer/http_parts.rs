//! The two small traits through which the layer reads requests and
//! responses, so one layer serves `http` types and, with the `reqwest`
//! feature, reqwest's own.

use http::{HeaderMap, StatusCode};

/// A request whose target host the layer can read, for per-host back-off.
///
/// Implemented for [`http::Request<B>`] and, with the `reqwest` feature, for
/// `reqwest::Request`.
pub trait HttpRequest {
    /// The request's `host[:port]`, if its URI has one.
    fn authority(&self) -> Option<&str>;
}

/// A response whose status and headers the layer can read.
///
/// Implemented for [`http::Response<B>`] and, with the `reqwest` feature,
/// for `reqwest::Response`.
///
/// ```
/// use tower_snapshotter::layer::HttpResponse;
///
/// let r = http::Response::builder().status(429).body(()).unwrap();
/// assert_eq!(r.status().as_u16(), 429);
/// ```
pub trait HttpResponse {
    /// The status code.
    fn status(&self) -> StatusCode;
    /// The header fields.
    fn headers(&self) -> &HeaderMap;
}

impl<B> HttpRequest for http::Request<B> {
    #[inline]
    fn authority(&self) -> Option<&str> {
        self.uri().authority().map(|a| a.as_str())
    }
}

impl<B> HttpResponse for http::Response<B> {
    #[inline]
    fn status(&self) -> StatusCode {
        http::Response::status(self)
    }
    fn headers(&self) -> &HeaderMap {
        http::Response::headers(self)
    }
}

#[cfg(feature = "reqwest")]
impl HttpRequest for reqwest::Request {
    #[inline]
    fn authority(&self) -> Option<&str> {
        authority_of_url(self.url().as_str())
    }
}

/// The `host[:port]` of an absolute URL, without user info.
#[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
pub(crate) fn authority_of_url(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    (!authority.is_empty()).then_some(authority)
}

#[cfg(feature = "reqwest")]
impl HttpResponse for reqwest::Response {
    #[inline]
    fn status(&self) -> StatusCode {
        reqwest::Response::status(self)
    }
    fn headers(&self) -> &HeaderMap {
        reqwest::Response::headers(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_of_urls() {
        assert_eq!(
            authority_of_url("http://a.example:8080/x?y"),
            Some("a.example:8080")
        );
        assert_eq!(authority_of_url("https://user:pw@b.example/"), Some("b.example"));
        assert_eq!(authority_of_url("https://c.example"), Some("c.example"));
        assert_eq!(authority_of_url("https://[::1]:9/p"), Some("[::1]:9"));
        assert_eq!(authority_of_url("file:///etc"), None);
        assert_eq!(authority_of_url("nonsense"), None);
    }

    #[test]
    fn http_request_authority() {
        let r = http::Request::get("http://h.example:81/a").body(()).unwrap();
        assert_eq!(HttpRequest::authority(&r), Some("h.example:81"));
        let r = http::Request::get("/relative").body(()).unwrap();
        assert_eq!(HttpRequest::authority(&r), None);
    }
}
