use std::io::{Read, Write};
use std::net::TcpListener;

use super::*;
use crate::store::Database;
use crate::store::pg::PgClient;
use crate::store::testing::{TestDatabase, server_ca};
use crate::store::value::params;

/// Whether the connection to `url` is encrypted, as the server sees it.
fn encrypted(url: &str) -> StoreResult<bool> {
    let rows = PgClient::connect(url)?.query(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        params![],
    )?;
    Ok(rows[0].get(0))
}

/// The error of connecting to `url`, which must fail, checked not to show `secret`.
fn refused(url: &str, secret: &str) -> String {
    let error = connect(url)
        .err()
        .expect("the connection is refused")
        .to_string();
    assert!(!error.contains(secret), "{error}");
    error
}

#[test]
fn the_tls_settings_leave_the_url_and_the_rest_stays() {
    let (tls, rest) = PgTls::split(
        "postgres://u:p@db/baton?application_name=m&sslmode=verify-ca&sslrootcert=%2Fetc%2Fa%20b.pem",
    )
    .unwrap();
    assert_eq!(tls.mode, SslMode::VerifyCa);
    assert_eq!(tls.root_cert, Some(RootCert::File("/etc/a b.pem".into())));
    assert_eq!(rest, "postgres://u:p@db/baton?application_name=m");

    let (tls, rest) = PgTls::split("postgres://db/baton").unwrap();
    assert_eq!((tls.mode, tls.root_cert), (SslMode::Prefer, None));
    assert_eq!(rest, "postgres://db/baton");

    let (tls, _) = PgTls::split("postgres://db/baton?sslrootcert=system").unwrap();
    assert_eq!(tls.mode, SslMode::VerifyFull);
    assert_eq!(tls.root_cert, Some(RootCert::System));
    let error = PgTls::split("postgres://db/baton?sslrootcert=system&sslmode=require").unwrap_err();
    assert!(error.contains("sslmode=verify-full"), "{error}");
}

#[test]
fn a_bad_sslmode_is_refused_naming_the_accepted_values_and_not_the_password() {
    let url = "postgres://baton:hunter2@db/baton?sslmode=maybe";
    let error = url.parse::<Database>().unwrap_err();
    assert!(error.contains("postgres://baton:***@db/baton"), "{error}");
    assert!(
        error.contains(
            "sslmode \"maybe\" is not one of disable, prefer, require, verify-ca, \
                        verify-full"
        ),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
    let error = refused(url, "hunter2");
    assert!(error.contains("\"maybe\""), "{error}");
}

#[test]
fn an_unreadable_or_empty_sslrootcert_is_named() {
    let url = "postgres://baton:hunter2@127.0.0.1:1/baton?sslmode=verify-full&sslrootcert=";
    let error = refused(&format!("{url}/nonexistent/ca.pem"), "hunter2");
    assert!(
        error.contains("cannot read sslrootcert /nonexistent/ca.pem: No such file"),
        "{error}"
    );
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("ca.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let error = refused(&format!("{url}{}", empty.display()), "hunter2");
    assert!(
        error.contains(&format!(
            "sslrootcert {} holds no certificate",
            empty.display()
        )),
        "{error}"
    );
}

/// A server offering no TLS: it answers the client's request for TLS `N`, then refuses the plain
/// startup that may follow with an error saying it came. Its port.
fn server_without_tls() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut ssl_request = [0; 8];
        stream.read_exact(&mut ssl_request).unwrap();
        assert_eq!(ssl_request, [0, 0, 0, 8, 4, 210, 22, 47], "an SSLRequest");
        stream.write_all(b"N").unwrap();
        let mut length = [0; 4];
        if stream.read_exact(&mut length).is_err() {
            return;
        }
        let mut startup = vec![0; u32::from_be_bytes(length) as usize - 4];
        stream.read_exact(&mut startup).unwrap();
        let fields = b"SFATAL\0C28000\0Mplain startup received\0\0";
        let mut error = vec![b'E'];
        error.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
        error.extend_from_slice(fields);
        stream.write_all(&error).unwrap();
    });
    (port, server)
}

#[test]
fn require_refuses_a_server_without_tls_and_prefer_goes_on_in_plain() {
    for (mode, expected) in [
        ("require", "server does not support TLS"),
        ("prefer", "plain startup received"),
    ] {
        let (port, server) = server_without_tls();
        let error = refused(
            &format!("postgres://baton:hunter2@127.0.0.1:{port}/baton?sslmode={mode}"),
            "hunter2",
        );
        assert!(error.contains(expected), "{mode}: {error}");
        server.join().unwrap();
    }
}

#[test]
fn each_sslmode_encrypts_or_not_as_libpq_does() {
    let test = TestDatabase::create();
    let ca = server_ca();
    for (parameters, expected) in [
        (format!("?sslmode=verify-full&sslrootcert={ca}"), true),
        (format!("?sslmode=verify-ca&sslrootcert={ca}"), true),
        (format!("?sslmode=require&sslrootcert={ca}"), true),
        ("?sslmode=require".to_string(), true),
        (String::new(), true),
        ("?sslmode=disable".to_string(), false),
    ] {
        let url = format!("{}{parameters}", test.url);
        assert_eq!(encrypted(&url).unwrap(), expected, "{url}");
    }
}

#[test]
fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let test = TestDatabase::create();
    let elsewhere = test.url.replacen(
        "postgres://postgres@127.0.0.1:",
        "postgres://postgres:hunter2@db.baton.invalid:",
        1,
    );
    assert_ne!(elsewhere, test.url, "the test server is on 127.0.0.1");
    let url = format!(
        "{elsewhere}?hostaddr=127.0.0.1&sslrootcert={}&sslmode=",
        server_ca()
    );
    let error = refused(&format!("{url}verify-full"), "hunter2");
    assert!(
        error.contains("certificate not valid for name \"db.baton.invalid\""),
        "{error}"
    );
    assert!(error.starts_with("cannot connect to postgres://postgres:***@db.baton.invalid:"));
    assert!(encrypted(&format!("{url}verify-ca")).unwrap());
}
