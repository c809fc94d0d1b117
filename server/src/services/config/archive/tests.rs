//! Round trips of export and import, hostile archives, metadata flavours and policies.
use std::io::{Cursor, Read, Write};

use nacos_core::{ConfigItem, ConfigKey, Operator};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::export::*;
use super::import::*;
use super::read::*;
use super::*;
use crate::app::App;
use nacos_core::md5_hex;

fn config(group: &str, data_id: &str, content: &str) -> ConfigItem {
    ConfigItem {
        id: 1,
        key: ConfigKey::new("", group, data_id),
        content: content.to_string(),
        md5: md5_hex(content),
        config_type: "text".to_string(),
        created_ms: 1_700_000_000_000,
        modified_ms: 1_700_000_000_000,
        ..ConfigItem::default()
    }
}

fn sample() -> Vec<ConfigItem> {
    let mut a = config("DEFAULT_GROUP", "app.yaml", "server:\n  port: 8080\n");
    a.config_type = "yaml".into();
    a.app_name = "billing".into();
    a.desc = "it's: a \"desc\"\nsecond line # not a comment".into();
    let mut b = config("g-1", "plain", "k=v");
    b.config_type = "properties".into();
    b.desc = "true".into();
    let mut c = config("DEFAULT_GROUP", "no.app.json", "{\"a\":1}");
    c.config_type = "json".into();
    c.app_name = "null".into();
    c.desc = "中文 描述\ttab".into();
    vec![a, b, c]
}

/// Build a zip from (name, bytes) pairs.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        writer
            .start_file(*name, SimpleFileOptions::default())
            .expect("start entry");
        writer.write_all(data).expect("write entry");
    }
    writer.finish().expect("finish zip").into_inner()
}

fn names(zip: &[u8]) -> Vec<String> {
    let archive = ZipArchive::new(Cursor::new(zip)).expect("readable zip");
    archive
        .file_names()
        .map(|n| n.expect("name").to_string())
        .collect()
}

fn entry(zip: &[u8], name: &str) -> String {
    let mut archive = ZipArchive::new(Cursor::new(zip)).expect("readable zip");
    let mut file = archive.by_name(name).expect("entry present");
    let mut text = String::new();
    file.read_to_string(&mut text).expect("utf-8 entry");
    text
}

#[test]
fn v1_export_layout_and_round_trip() {
    let items = sample();
    let zip = export_zip(&items, false).expect("export");
    assert_eq!(
        names(&zip),
        vec![
            "DEFAULT_GROUP/app.yaml",
            "g-1/plain",
            "DEFAULT_GROUP/no.app.json",
            META_V1
        ]
    );
    assert_eq!(
        entry(&zip, META_V1),
        "DEFAULT_GROUP.app~yaml.app=billing\r\nDEFAULT_GROUP.no.app~json.app=null\r\n"
    );
    let parsed = parse_import(&zip).expect("parse");
    assert_eq!(parsed.len(), 3);
    for (got, want) in parsed.iter().zip(&items) {
        assert_eq!(got.group, want.key.group);
        assert_eq!(got.data_id, want.key.data_id);
        assert_eq!(got.content, want.content);
        assert_eq!(got.config_type, None);
        assert_eq!(got.unrecognized, None);
        let app = (!want.app_name.is_empty()).then(|| want.app_name.clone());
        assert_eq!(got.app_name, app);
    }
    // v1 carries no type: it comes from the extension.
    assert_eq!(import_type(&parsed[0]), "yaml");
    assert_eq!(import_type(&parsed[1]), "text");
    assert_eq!(import_type(&parsed[2]), "json");
}

#[test]
fn v1_export_without_app_names_has_no_meta() {
    let zip = export_zip(&[config("G", "d", "x")], false).expect("export");
    assert_eq!(names(&zip), vec!["G/d"]);
}

#[test]
fn v2_export_layout_and_round_trip() {
    let items = sample();
    let zip = export_zip(&items, true).expect("export");
    assert_eq!(names(&zip).last().map(String::as_str), Some(META_V2));
    let meta = entry(&zip, META_V2);
    assert!(
        meta.starts_with("metadata:\n- dataId: app.yaml\n  group: DEFAULT_GROUP\n  type: yaml\n"),
        "{meta}"
    );
    assert!(meta.contains("  desc: 'true'\n"), "{meta}");
    assert!(meta.contains("  appName: 'null'\n"), "{meta}");
    let parsed = parse_import(&zip).expect("parse");
    assert_eq!(parsed.len(), 3);
    for (got, want) in parsed.iter().zip(&items) {
        assert_eq!(got.group, want.key.group);
        assert_eq!(got.data_id, want.key.data_id);
        assert_eq!(got.content, want.content);
        assert_eq!(got.config_type.as_deref(), Some(want.config_type.as_str()));
        assert_eq!(got.desc.as_deref().unwrap_or(""), want.desc);
        assert_eq!(got.app_name.as_deref().unwrap_or(""), want.app_name);
    }
}

#[test]
fn empty_v2_export_reads_back_as_empty() {
    let zip = export_zip(&[], true).expect("export");
    assert_eq!(entry(&zip, META_V2), "metadata: []\n");
    let failure = parse_import(&zip).expect_err("nothing to import");
    assert_eq!(failure.code, CODE_EMPTY);
}

#[test]
fn yaml_scalars_read_back() {
    for value in [
        "",
        "plain",
        "true",
        "No",
        "null",
        "~",
        "1.5",
        "0x1F",
        "-x",
        "a: b",
        "#x",
        "a #b",
        "it's",
        "\"q\"",
        " lead",
        "trail ",
        "line\nbreak",
        "\ttab",
        "back\\slash",
        "中文",
        "\u{2028}",
        "bell\u{7}",
        "- item",
        "[list]",
        "{map}",
        "*alias",
        "&anchor",
        "!tag",
        "|",
        ">",
        "%",
        "@",
        "`",
    ] {
        let doc = format!(
            "metadata:\n- dataId: d\n  group: g\n  desc: {}\n",
            yaml_scalar(value)
        );
        let entries = parse_metadata_v2(&doc).unwrap_or_else(|e| panic!("{value:?}: {e}\n{doc}"));
        assert_eq!(entries[0].desc.as_deref(), Some(value), "{doc}");
    }
}

#[test]
fn reads_nacos_style_metadata() {
    // SnakeYAML output: keys in alphabetical order, nulls spelled out, long plain text
    // folded onto an indented continuation line, quoted values, comments.
    let doc = "metadata:\r\n\
        - appName: null\r\n\
        \x20 dataId: a.yaml\r\n\
        \x20 desc: a long description that SnakeYAML\r\n\
        \x20   wrapped onto a second line\r\n\
        \x20 group: DEFAULT_GROUP\r\n\
        \x20 type: yaml # trailing comment\r\n\
        # between entries\r\n\
        -   dataId: \"b.json\"\r\n\
        \x20   group: 'G'\r\n\
        \x20   type: !!str json\r\n\
        \x20   desc: \"first \\\r\n\
        \x20     joined\"\r\n\
        \x20   configTags: [x, y]\r\n\
        \x20   appName: |-\r\n\
        \x20     line one\r\n\
        \x20     line two\r\n";
    let entries = parse_metadata_v2(doc).expect("parse");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].app_name, None);
    assert_eq!(entries[0].data_id.as_deref(), Some("a.yaml"));
    assert_eq!(
        entries[0].desc.as_deref(),
        Some("a long description that SnakeYAML wrapped onto a second line")
    );
    assert_eq!(entries[0].config_type.as_deref(), Some("yaml"));
    assert_eq!(entries[1].data_id.as_deref(), Some("b.json"));
    assert_eq!(entries[1].group.as_deref(), Some("G"));
    assert_eq!(entries[1].config_type.as_deref(), Some("json"));
    assert_eq!(entries[1].desc.as_deref(), Some("first joined"));
    assert_eq!(entries[1].app_name.as_deref(), Some("line one\nline two"));

    let indented = "metadata:\n  - dataId: x\n    group: y\n  - dataId: z\n    group: w\n";
    let entries = parse_metadata_v2(indented).expect("indented list");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].group.as_deref(), Some("w"));

    let dash_alone = "metadata:\n-\n  dataId: x\n  group: y\n- # note\n  dataId: z\n  group: w\n";
    let entries = parse_metadata_v2(dash_alone).expect("dash on its own line");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].data_id.as_deref(), Some("x"));
    assert_eq!(entries[1].group.as_deref(), Some("w"));

    let folded = "metadata:\n- dataId: x\n  group: y\n  desc: >\n    one\n    two\n\n    three\n";
    let entries = parse_metadata_v2(folded).expect("folded");
    assert_eq!(entries[0].desc.as_deref(), Some("one two\nthree\n"));
}

#[test]
fn bad_metadata_is_100002() {
    for meta in [
        "nothing: here\n",
        "metadata: {dataId: x}\n",
        "metadata:\n- dataId: x\n",
        "metadata:\n- group: g\n",
        "metadata:\n- dataId: 'unclosed\n  group: g\n",
        "metadata:\n- just text\n",
        "metadata:\n- dataId: x\n     group: g\n",
        "metadata:\n\t- dataId: x\n",
    ] {
        let zip = zip_of(&[("g/x", b"content"), (META_V2, meta.as_bytes())]);
        let failure = parse_import(&zip).expect_err(meta);
        assert_eq!(
            failure.code, CODE_BAD_METADATA,
            "{meta}: {}",
            failure.message
        );
    }
    let zip = zip_of(&[
        ("g/x", b"content"),
        (META_V1, b"g.x.app=a\r\nno equals sign\r\n"),
    ]);
    assert_eq!(
        parse_import(&zip).expect_err("bad v1 meta").code,
        CODE_BAD_METADATA
    );
}

#[test]
fn unrecognized_entries_are_reported() {
    let zip = zip_of(&[
        ("G/ok.txt", b"ok"),
        ("top-level.txt", b"x"),
        ("a/b/c", b"x"),
        ("G/bad name", b"x"),
        ("dir/", b""),
    ]);
    let items = parse_import(&zip).expect("parse");
    let configs: Vec<_> = items.iter().filter(|i| i.unrecognized.is_none()).collect();
    assert_eq!(configs.len(), 1);
    assert_eq!(configs[0].content, "ok");
    let odd: Vec<&str> = items
        .iter()
        .filter_map(|i| i.unrecognized.as_deref())
        .collect();
    assert_eq!(odd.len(), 3, "{odd:?}");
    assert_eq!(odd[0], "top-level.txt");
    assert_eq!(odd[1], "a/b/c");
    assert!(odd[2].starts_with("G/bad name ("), "{odd:?}");

    let meta = "metadata:\n- dataId: listed\n  group: G\n  type: text\n- dataId: missing\n  group: G\n  type: text\n";
    let zip = zip_of(&[
        ("G/listed", b"x"),
        ("G/extra", b"y"),
        (META_V2, meta.as_bytes()),
    ]);
    let items = parse_import(&zip).expect("parse v2");
    let odd: Vec<&str> = items
        .iter()
        .filter_map(|i| i.unrecognized.as_deref())
        .collect();
    assert_eq!(odd.len(), 2, "{odd:?}");
    assert!(odd[0].starts_with("G/extra"));
    assert!(odd[1].starts_with("G/missing"));
}

#[test]
fn non_zip_is_100004_and_empty_is_100005() {
    let failure = parse_import(b"this is not a zip archive at all").expect_err("not a zip");
    assert_eq!(failure.code, CODE_PARSE_FAILED);
    assert_eq!(parse_import(b"").expect_err("empty").code, CODE_EMPTY);
    let empty = zip_of(&[]);
    assert_eq!(
        parse_import(&empty).expect_err("empty zip").code,
        CODE_EMPTY
    );
    let junk_only = zip_of(&[("readme", b"hello")]);
    let failure = parse_import(&junk_only).expect_err("no configs");
    assert_eq!(failure.code, CODE_EMPTY);
    assert!(failure.message.contains("readme"), "{}", failure.message);
    // A truncated archive is a parse failure, not a panic.
    let good = export_zip(&sample(), true).expect("export");
    for cut in [10, good.len() / 2, good.len() - 5] {
        let failure = parse_import(&good[..cut]).expect_err("truncated");
        assert_eq!(failure.code, CODE_PARSE_FAILED);
    }
}

#[test]
fn oversized_entries_are_refused() {
    // Highly compressible: 10 MiB + 1 zero bytes deflate to a few KiB.
    let big = vec![0u8; usize::try_from(MAX_ENTRY_BYTES).expect("fits") + 1];
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    writer.start_file("G/bomb", options).expect("start");
    writer.write_all(&big).expect("write");
    let zip = writer.finish().expect("finish").into_inner();
    assert!(zip.len() < 200 * 1024, "compressed to {} bytes", zip.len());
    let failure = parse_import(&zip).expect_err("oversized entry");
    assert_eq!(failure.code, CODE_PARSE_FAILED);
    assert!(failure.message.contains("G/bomb"), "{}", failure.message);

    // Entries within the per-entry cap that add up past the archive cap (scaled down).
    let limits = Limits {
        entry_bytes: 100,
        total_bytes: 250,
        entries: 10,
    };
    let fits = zip_of(&[("G/a", &[b'a'; 100]), ("G/b", &[b'b'; 100])]);
    assert_eq!(parse_import_within(&fits, limits).expect("fits").len(), 2);
    let too_much = zip_of(&[
        ("G/a", &[b'a'; 100]),
        ("G/b", &[b'b'; 100]),
        ("G/c", &[b'c'; 100]),
    ]);
    let failure = parse_import_within(&too_much, limits).expect_err("archive too large");
    assert_eq!(failure.code, CODE_PARSE_FAILED);
    assert!(failure.message.contains("250 bytes"), "{}", failure.message);
    let one_big = zip_of(&[("G/a", &[b'a'; 101])]);
    let failure = parse_import_within(&one_big, limits).expect_err("entry too large");
    assert!(failure.message.contains("'G/a'"), "{}", failure.message);
    let names: Vec<String> = (0..11).map(|n| format!("G/d{n}")).collect();
    let many: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let failure = parse_import_within(&zip_of(&many), limits).expect_err("too many entries");
    assert!(
        failure.message.contains("11 entries"),
        "{}",
        failure.message
    );
}

#[test]
fn corrupt_archives_never_panic() {
    let zip = export_zip(&sample(), true).expect("export");
    let mut corrupt = zip.clone();
    // Damage headers and data a little more each round: a clean failure or a parse, never
    // a panic.
    for index in (0..corrupt.len()).step_by(3) {
        corrupt[index] ^= 0x5a;
        let _ = parse_import(&corrupt);
    }
}

#[test]
fn zip_times() {
    assert_eq!(civil_date(0), (1970, 1, 1));
    assert_eq!(civil_date(19_723), (2024, 1, 1));
    assert_eq!(civil_date(19_782), (2024, 2, 29));
    let t = zip_time(1_709_210_096_000); // 2024-02-29T12:34:56Z
    assert_eq!((t.year(), t.month(), t.day()), (2024, 2, 29));
    assert_eq!((t.hour(), t.minute(), t.second()), (12, 34, 56));
    assert_eq!(zip_time(0), DateTime::default());
}

async fn open_app(dir: &std::path::Path) -> crate::app::AppState {
    App::open(crate::foundation::settings::Settings::standalone(dir))
        .await
        .expect("app opens")
}

fn import_item(group: &str, data_id: &str, content: &str) -> ImportItem {
    ImportItem {
        group: group.into(),
        data_id: data_id.into(),
        content: content.into(),
        ..ImportItem::default()
    }
}

#[tokio::test]
async fn import_policies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = open_app(dir.path()).await;
    let op = Operator {
        user: "tester".into(),
        ip: "127.0.0.1".into(),
    };
    let first = vec![
        import_item("G", "a.yaml", "a: 1"),
        ImportItem::unrecognized("junk"),
    ];
    let report = import_items(
        &app.config,
        app.repos.namespaces.as_ref(),
        app.settings.max_content,
        Import {
            namespace: "",
            items: first,
            policy: ImportPolicy::Abort,
            operator: &op,
        },
    )
    .await
    .expect("import");
    assert_eq!(report.succ_count, 1);
    assert_eq!(report.unrecognized, vec!["junk".to_string()]);
    let stored = app
        .config
        .repo()
        .get(&ConfigKey::new("", "G", "a.yaml"))
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.config_type, "yaml");
    assert_eq!(stored.content, "a: 1");

    let batch = || {
        vec![
            import_item("G", "new1", "n1"),
            import_item("G", "a.yaml", "a: 2"),
            import_item("G", "new2", "n2"),
        ]
    };
    let abort = import_items(
        &app.config,
        app.repos.namespaces.as_ref(),
        app.settings.max_content,
        Import {
            namespace: "",
            items: batch(),
            policy: ImportPolicy::Abort,
            operator: &op,
        },
    )
    .await
    .expect("abort import");
    assert_eq!(abort.succ_count, 1);
    assert_eq!(abort.skip_count, 0);
    assert_eq!(abort.fail_data.len(), 1);
    assert_eq!(abort.fail_data[0].data_id, "a.yaml");
    assert_eq!(abort.skip_data.len(), 1);
    assert_eq!(abort.skip_data[0].data_id, "new2");

    let skip = import_items(
        &app.config,
        app.repos.namespaces.as_ref(),
        app.settings.max_content,
        Import {
            namespace: "",
            items: batch(),
            policy: ImportPolicy::Skip,
            operator: &op,
        },
    )
    .await
    .expect("skip import");
    assert_eq!(skip.succ_count, 1, "new2 only");
    assert_eq!(skip.skip_count, 2);
    assert_eq!(skip.skip_data.len(), 2);

    let overwrite = import_items(
        &app.config,
        app.repos.namespaces.as_ref(),
        app.settings.max_content,
        Import {
            namespace: "",
            items: batch(),
            policy: ImportPolicy::Overwrite,
            operator: &op,
        },
    )
    .await
    .expect("overwrite import");
    assert_eq!(overwrite.succ_count, 3);
    let stored = app
        .config
        .repo()
        .get(&ConfigKey::new("", "G", "a.yaml"))
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.content, "a: 2");

    let blank = import_items(
        &app.config,
        app.repos.namespaces.as_ref(),
        app.settings.max_content,
        Import {
            namespace: "",
            items: vec![import_item("G", "blank", "  ")],
            policy: ImportPolicy::Overwrite,
            operator: &op,
        },
    )
    .await
    .expect("blank import");
    assert_eq!(blank.succ_count, 0);
    assert_eq!(blank.fail_data.len(), 1);

    let missing_ns = import_items(
        &app.config,
        app.repos.namespaces.as_ref(),
        app.settings.max_content,
        Import {
            namespace: "no-such-ns",
            items: batch(),
            policy: ImportPolicy::Skip,
            operator: &op,
        },
    )
    .await
    .expect("report");
    assert_eq!(
        missing_ns.failure.map(|f| f.code),
        Some(CODE_NAMESPACE_MISSING)
    );
}

#[test]
fn yaml_anchors_and_aliases_are_refused() {
    // Ten levels of ten aliases each would be 10^10 nodes once loaded.
    let mut bomb = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let prev = level - 1;
        let refs = vec![format!("*l{prev}"); 10].join(", ");
        bomb.push_str(&format!("l{level}: &l{level} [{refs}]\n"));
    }
    bomb.push_str("metadata:\n- dataId: a\n  group: g\n  desc: *l9\n");
    let err = parse_metadata_v2(&bomb).expect_err("aliases refused");
    assert!(err.contains("anchors and aliases"), "{err}");
    let zip = zip_of(&[("g/a", b"x"), (META_V2, bomb.as_bytes())]);
    let failure = parse_import(&zip).expect_err("bad metadata");
    assert_eq!(failure.code, CODE_BAD_METADATA, "{failure:?}");
}
