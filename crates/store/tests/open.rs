//! `greenlab_store::open`: every URL form, and bad URLs answered with clear errors.

mod common;

use common::TempFiles;

#[test]
fn sqlite_urls_and_plain_paths_open_the_same_file() {
    let files = TempFiles::new();
    let path = files.fresh();
    let by_url =
        greenlab_store::open(&format!("sqlite://{}", path.display())).expect("sqlite:///abs");
    let st = by_url.create_study("s", "{}").expect("create");
    drop(by_url);
    assert!(path.is_file(), "sqlite:///abs/path.db creates that file");
    let by_path = greenlab_store::open(&path.display().to_string()).expect("plain .db path");
    assert_eq!(by_path.study("s").expect("study").id, st.id);
}

#[test]
fn memory_url_opens_an_in_memory_storage() {
    let s = greenlab_store::open("memory:").expect("memory:");
    let st = s.create_study("m", "{}").expect("create");
    assert_eq!(s.trials(st.id).expect("trials").len(), 0);
}

#[test]
fn unknown_schemes_are_refused_with_the_supported_list() {
    for url in [
        "mysql://root@db/x",
        "redis://localhost",
        "study.toml",
        "ftp://x.db",
    ] {
        let err = greenlab_store::open(url).err().expect("refused");
        let msg = err.to_string();
        assert!(msg.contains("unsupported storage URL"), "{url}: {msg}");
        assert!(
            msg.contains("postgres://") && msg.contains("sqlite:///"),
            "{url}: {msg}"
        );
    }
}

#[test]
fn an_unreachable_server_is_named_with_its_password_hidden() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let url = "postgres://alice:hunter2@127.0.0.1:1/studies";
    let err = greenlab_store::open(url).err().expect("unreachable");
    let msg = err.to_string();
    assert!(
        msg.contains("postgres://alice:***@127.0.0.1:1/studies"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "password leaked: {msg}");
    assert!(msg.contains("check that the server is running"), "{msg}");
}

#[test]
fn a_malformed_postgres_url_is_a_clear_error() {
    let err = greenlab_store::open("postgres://u:pw@host:notaport/db")
        .err()
        .expect("malformed");
    let msg = err.to_string();
    assert!(
        msg.contains("malformed URL") || msg.contains("invalid"),
        "{msg}"
    );
    assert!(!msg.contains(":pw@"), "password leaked: {msg}");
}
