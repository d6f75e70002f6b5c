//! The web dashboard's static files (`master/dashboard/`), compiled into the binary and served
//! under `/ui/`. They hold no data, so they need no token; the pages read `/api/v1` with one.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

/// The dashboard's files; `vendor-build/` only pins the chart library and is left out.
#[derive(RustEmbed)]
#[folder = "dashboard/"]
#[exclude = "vendor-build/*"]
struct Dashboard;

/// The page every dashboard route starts from.
const INDEX: &str = "index.html";

/// What a browser may load from a dashboard page: its own origin only, no inline scripts.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `/` and `/ui` redirect to `/ui/`; `/ui/` is the dashboard; `/ui/{path}` its files.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(to_dashboard))
        .route("/ui", get(to_dashboard))
        .route("/ui/", get(index))
        .route("/ui/{*path}", get(asset))
}

async fn to_dashboard() -> Redirect {
    Redirect::temporary("/ui/")
}

async fn index(headers: HeaderMap) -> Response {
    serve(INDEX, &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// One embedded file with its content type and ETag (304 when the browser's copy is current),
/// revalidated on every use (`no-cache`) so a new master never serves stale pages; 404 when
/// there is no such file.
fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = Dashboard::get(path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "error": format!("no dashboard file {path:?}") }).to_string(),
        )
            .into_response();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()));
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    if let Ok(value) = HeaderValue::from_str(&content_type(file.metadata.mimetype())) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    (headers, file.data.into_owned()).into_response()
}

/// A guessed MIME type, with `charset=utf-8` for text (all our text files are UTF-8).
fn content_type(mime: &str) -> String {
    let textual = mime.starts_with("text/") || mime == "application/javascript";
    if textual && !mime.contains("charset") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

/// Lowercase hexadecimal of some bytes.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        router::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn header_of(response: &Response, name: header::HeaderName) -> &str {
        response.headers()[name].to_str().unwrap()
    }

    #[tokio::test]
    async fn the_root_and_bare_ui_redirect_to_the_dashboard() {
        for path in ["/", "/ui"] {
            let response = get(path, None).await;
            assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT, "{path}");
            assert_eq!(header_of(&response, header::LOCATION), "/ui/", "{path}");
        }
    }

    #[tokio::test]
    async fn the_dashboard_is_html_revalidated_by_etag() {
        let response = get("/ui/", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        let etag = header_of(&response, header::ETAG).to_string();
        assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains("<!doctype html>"));

        let again = get("/ui/index.html", Some(&etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header_of(&again, header::ETAG), etag);
    }

    #[tokio::test]
    async fn scripts_styles_and_the_vendored_chart_have_their_types() {
        for (path, expected) in [
            ("/ui/app.js", "javascript"),
            ("/ui/pages/trial.js", "javascript"),
            ("/ui/style.css", "text/css"),
            ("/ui/vendor/uPlot.iife.min.js", "javascript"),
            ("/ui/vendor/uPlot.min.css", "text/css"),
        ] {
            let response = get(path, None).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let kind = header_of(&response, header::CONTENT_TYPE);
            assert!(kind.contains(expected), "{path}: {kind}");
            assert_eq!(
                header_of(&response, header::X_CONTENT_TYPE_OPTIONS),
                "nosniff"
            );
            let policy = header_of(&response, header::CONTENT_SECURITY_POLICY);
            assert!(policy.contains("script-src 'self';"), "{path}: {policy}");
            assert_eq!(header_of(&response, header::REFERRER_POLICY), "no-referrer");
        }
    }

    #[tokio::test]
    async fn unknown_files_and_the_pinning_folder_are_not_found() {
        for path in [
            "/ui/nope.js",
            "/ui/pages/",
            "/ui/vendor-build/package.json",
            "/ui/../Cargo.toml",
        ] {
            let response = get(path, None).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }
}
