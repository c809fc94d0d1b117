//! Gray (beta and tag) variants of configs. Every case here needs
//! [`Capabilities::gray_configs`](nacos_core::Capabilities::gray_configs).

use nacos_core::{Gray, GrayPublish, RepoError, Repos, md5_hex, now_millis};

use super::fixtures::{all_history, gray_publish, key, must_get, must_publish, publish, tick};

fn tag(name: &str) -> Gray {
    Gray::Tag(name.to_string())
}

/// A beta variant stores its content, md5 and beta IPs; `get_gray` returns it.
pub async fn publish_beta_then_get(repos: &Repos) {
    let k = key("", "beta.yaml");
    let publish = GrayPublish {
        beta_ips: vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()],
        app_name: Some("beta-app".to_string()),
        encrypted_data_key: Some("beta-edk".to_string()),
        ..gray_publish(&k, "beta content")
    };
    let variant = repos
        .configs
        .publish_gray(Gray::Beta, publish)
        .await
        .expect("publish beta");
    assert_eq!(variant.key, k);
    assert_eq!(variant.gray, Gray::Beta);
    assert_eq!(variant.content, "beta content");
    assert_eq!(variant.md5, md5_hex("beta content"));
    assert_eq!(
        variant.beta_ips,
        vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()]
    );
    assert_eq!(variant.app_name, "beta-app");
    assert_eq!(variant.encrypted_data_key, "beta-edk");
    assert_eq!(variant.src_user, "conformance");
    assert!(variant.modified_ms >= variant.created_ms);
    let got = repos
        .configs
        .get_gray(&k, &Gray::Beta)
        .await
        .expect("get beta");
    assert_eq!(got, Some(variant));
    let no_tag = repos
        .configs
        .get_gray(&k, &tag("blue"))
        .await
        .expect("get tag");
    assert_eq!(no_tag, None, "a beta is not a tag");
}

/// A tag variant is stored under its tag name.
pub async fn publish_tag_then_get(repos: &Repos) {
    let k = key("", "tag.yaml");
    let variant = repos
        .configs
        .publish_gray(tag("blue"), gray_publish(&k, "blue content"))
        .await
        .expect("publish tag");
    assert_eq!(variant.gray, tag("blue"));
    assert_eq!(variant.content, "blue content");
    assert_eq!(variant.md5, md5_hex("blue content"));
    assert!(variant.beta_ips.is_empty(), "tags have no beta IPs");
    let got = repos
        .configs
        .get_gray(&k, &tag("blue"))
        .await
        .expect("get tag");
    assert_eq!(got, Some(variant));
    assert_eq!(
        repos
            .configs
            .get_gray(&k, &tag("green"))
            .await
            .expect("other tag"),
        None
    );
    assert_eq!(
        repos.configs.get_gray(&k, &Gray::Beta).await.expect("beta"),
        None
    );
}

/// A variant never published is `None`.
pub async fn get_gray_missing_returns_none(repos: &Repos) {
    let k = key("", "no-gray");
    assert_eq!(
        repos.configs.get_gray(&k, &Gray::Beta).await.expect("beta"),
        None
    );
    assert_eq!(
        repos.configs.get_gray(&k, &tag("x")).await.expect("tag"),
        None
    );
    assert!(repos.configs.list_grays(&k).await.expect("list").is_empty());
}

/// `list_grays` lists the beta first, then tags by name, and only the key's variants.
pub async fn list_grays_beta_first_then_tags_by_name(repos: &Repos) {
    let k = key("", "listed");
    for gray in [tag("zeta"), Gray::Beta, tag("alpha"), tag("mid")] {
        let content = format!("{gray:?}");
        repos
            .configs
            .publish_gray(gray, gray_publish(&k, &content))
            .await
            .expect("publish");
    }
    repos
        .configs
        .publish_gray(tag("beta"), gray_publish(&key("", "other"), "x"))
        .await
        .expect("other key");
    repos
        .configs
        .publish_gray(Gray::Beta, gray_publish(&key("ns-gray", "listed"), "x"))
        .await
        .expect("other ns");
    let grays: Vec<Gray> = repos
        .configs
        .list_grays(&k)
        .await
        .expect("list")
        .into_iter()
        .map(|g| g.gray)
        .collect();
    assert_eq!(
        grays,
        vec![Gray::Beta, tag("alpha"), tag("mid"), tag("zeta")]
    );
}

/// Republishing a variant replaces its content and keeps its id and created time.
pub async fn gray_update_replaces_content_keeps_id(repos: &Repos) {
    let k = key("", "gray-update");
    let first = repos
        .configs
        .publish_gray(
            Gray::Beta,
            GrayPublish {
                beta_ips: vec!["1.1.1.1".to_string()],
                app_name: Some("app".to_string()),
                ..gray_publish(&k, "v1")
            },
        )
        .await
        .expect("first");
    tick().await;
    let second = repos
        .configs
        .publish_gray(
            Gray::Beta,
            GrayPublish {
                beta_ips: vec!["2.2.2.2".to_string()],
                ..gray_publish(&k, "v2")
            },
        )
        .await
        .expect("second");
    assert_eq!(second.id, first.id, "replacing keeps the id");
    assert_eq!(
        second.created_ms, first.created_ms,
        "replacing keeps created_ms"
    );
    assert!(second.modified_ms >= first.modified_ms);
    assert_eq!(second.content, "v2");
    assert_eq!(second.md5, md5_hex("v2"));
    assert_eq!(
        second.beta_ips,
        vec!["2.2.2.2".to_string()],
        "beta IPs are replaced"
    );
    assert_eq!(
        repos.configs.get_gray(&k, &Gray::Beta).await.expect("get"),
        Some(second)
    );
    assert_eq!(repos.configs.list_grays(&k).await.expect("list").len(), 1);
}

/// Gray CAS succeeds against the stored variant's md5 and otherwise fails, writing nothing.
pub async fn gray_cas_match_and_mismatch(repos: &Repos) {
    let k = key("", "gray-cas");
    let first = repos
        .configs
        .publish_gray(tag("t"), gray_publish(&k, "v1"))
        .await
        .expect("first");
    let ok = GrayPublish {
        cas_md5: Some(first.md5.clone()),
        ..gray_publish(&k, "v2")
    };
    let second = repos
        .configs
        .publish_gray(tag("t"), ok)
        .await
        .expect("CAS with the stored md5");
    assert_eq!(second.content, "v2");
    let stale = GrayPublish {
        cas_md5: Some(first.md5.clone()),
        ..gray_publish(&k, "v3")
    };
    assert_err!(
        repos.configs.publish_gray(tag("t"), stale).await,
        RepoError::PreconditionFailed(_),
        "gray CAS with a stale md5"
    );
    let stored = repos.configs.get_gray(&k, &tag("t")).await.expect("get");
    assert_eq!(stored, Some(second), "a failed CAS changes nothing");
    // The formal config's md5 is not the gray's: CAS compares against the variant.
    let formal = must_publish(repos, publish(&k, "formal")).await;
    let wrong = GrayPublish {
        cas_md5: Some(formal.md5),
        ..gray_publish(&k, "v4")
    };
    assert_err!(
        repos.configs.publish_gray(tag("t"), wrong).await,
        RepoError::PreconditionFailed(_),
        "gray CAS with the formal config's md5"
    );
}

/// `remove_gray` returns the removed variant, then `None`; other variants stay.
pub async fn remove_gray_returns_then_none(repos: &Repos) {
    let k = key("", "gray-remove");
    let beta = repos
        .configs
        .publish_gray(Gray::Beta, gray_publish(&k, "b"))
        .await
        .expect("beta");
    let blue = repos
        .configs
        .publish_gray(tag("blue"), gray_publish(&k, "t"))
        .await
        .expect("tag");
    let removed = repos
        .configs
        .remove_gray(&k, &Gray::Beta)
        .await
        .expect("remove beta");
    assert_eq!(removed, Some(beta));
    assert_eq!(
        repos.configs.get_gray(&k, &Gray::Beta).await.expect("get"),
        None
    );
    assert_eq!(
        repos
            .configs
            .remove_gray(&k, &Gray::Beta)
            .await
            .expect("again"),
        None
    );
    assert_eq!(
        repos.configs.list_grays(&k).await.expect("list"),
        vec![blue.clone()]
    );
    assert_eq!(
        repos
            .configs
            .remove_gray(&k, &tag("blue"))
            .await
            .expect("tag"),
        Some(blue)
    );
    assert!(repos.configs.list_grays(&k).await.expect("list").is_empty());
}

/// Gray variants and the formal config do not touch each other: no formal row or history is
/// written by a gray publish, and formal publishes leave variants alone.
pub async fn gray_independent_of_formal(repos: &Repos) {
    let k = key("", "independent");
    repos
        .configs
        .publish_gray(Gray::Beta, gray_publish(&k, "beta only"))
        .await
        .expect("beta");
    assert_eq!(
        must_get(repos, &k).await,
        None,
        "a gray publish creates no formal config"
    );
    assert!(
        all_history(repos, &k).await.is_empty(),
        "a gray publish writes no history"
    );

    let formal = must_publish(repos, publish(&k, "formal v1")).await;
    let beta = repos
        .configs
        .get_gray(&k, &Gray::Beta)
        .await
        .expect("get")
        .expect("beta stays");
    assert_eq!(
        beta.content, "beta only",
        "a formal publish leaves the beta alone"
    );
    repos
        .configs
        .publish_gray(tag("t"), gray_publish(&k, "tag"))
        .await
        .expect("tag");
    assert_eq!(
        must_get(repos, &k).await,
        Some(formal),
        "a gray publish leaves the formal alone"
    );
    assert_eq!(
        all_history(repos, &k).await.len(),
        1,
        "still only the formal insert in history"
    );
    repos
        .configs
        .remove_gray(&k, &Gray::Beta)
        .await
        .expect("remove")
        .expect("existed");
    assert!(
        must_get(repos, &k).await.is_some(),
        "removing a gray keeps the formal config"
    );
}

/// `changed_since` lists gray publishes and removes too.
pub async fn changed_since_tracks_gray_changes(repos: &Repos) {
    let k = key("", "gray-changes");
    tick().await;
    let since = now_millis();
    tick().await;
    repos
        .configs
        .publish_gray(Gray::Beta, gray_publish(&k, "b"))
        .await
        .expect("beta");
    let changes = repos
        .configs
        .changed_since(since)
        .await
        .expect("changed_since");
    assert!(
        changes.iter().any(|c| c.key == k),
        "a gray publish is a change: {changes:?}"
    );

    tick().await;
    let since = now_millis();
    tick().await;
    let untouched = repos
        .configs
        .changed_since(since)
        .await
        .expect("changed_since");
    assert!(
        !untouched.iter().any(|c| c.key == k),
        "no change yet: {untouched:?}"
    );
    repos
        .configs
        .remove_gray(&k, &Gray::Beta)
        .await
        .expect("remove")
        .expect("existed");
    let changes = repos
        .configs
        .changed_since(since)
        .await
        .expect("changed_since");
    assert!(
        changes.iter().any(|c| c.key == k),
        "a gray remove is a change: {changes:?}"
    );
}
