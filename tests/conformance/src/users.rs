//! Users, role bindings and permissions (`repos.users`, a [`nacos_core::UserRepo`]), part of
//! [`conformance_suite!`](crate::conformance_suite) like every other area.

use nacos_core::{MatchMode, PageRequest, Permission, RepoError, Repos, RoleBinding, User};

fn user(name: &str) -> User {
    User {
        username: name.to_string(),
        password_hash: format!("$2a$10$hash-of-{name}"),
        enabled: true,
    }
}

fn binding(role: &str, username: &str) -> RoleBinding {
    RoleBinding {
        role: role.to_string(),
        username: username.to_string(),
    }
}

fn permission(role: &str, resource: &str, action: &str) -> Permission {
    Permission {
        role: role.to_string(),
        resource: resource.to_string(),
        action: action.to_string(),
    }
}

fn all() -> PageRequest {
    PageRequest::new(1, 100)
}

/// A created user is returned by `get_user` as stored; a missing one is `None`.
pub async fn user_create_get(repos: &Repos) {
    let users = repos.users.as_ref();
    let alice = User {
        enabled: false,
        ..user("alice")
    };
    users.create_user(alice.clone()).await.expect("create");
    let got = users.get_user("alice").await.expect("get");
    assert_eq!(got, Some(alice), "the stored user, hash and flag included");
    assert_eq!(users.get_user("nobody").await.expect("get missing"), None);
    assert_eq!(
        users.get_user("ALICE").await.expect("get other case"),
        None,
        "user names are case-sensitive"
    );
}

/// Creating a taken name fails with `AlreadyExists` and keeps the stored user.
pub async fn user_create_duplicate_already_exists(repos: &Repos) {
    let users = repos.users.as_ref();
    users.create_user(user("dup")).await.expect("create");
    let imposter = User {
        password_hash: "other".to_string(),
        ..user("dup")
    };
    assert_err!(
        users.create_user(imposter).await,
        RepoError::AlreadyExists(_),
        "creating a taken user name"
    );
    assert_eq!(users.get_user("dup").await.expect("get"), Some(user("dup")));
}

/// `update_password` replaces the hash; a missing user is `NotFound`.
pub async fn user_update_password(repos: &Repos) {
    let users = repos.users.as_ref();
    users.create_user(user("pw")).await.expect("create");
    users
        .update_password("pw", "$2a$10$new")
        .await
        .expect("update");
    let got = users.get_user("pw").await.expect("get").expect("exists");
    assert_eq!(got.password_hash, "$2a$10$new");
    assert_err!(
        users.update_password("ghost", "x").await,
        RepoError::NotFound(_),
        "updating a missing user's password"
    );
}

/// `delete_user` removes the user and its role bindings, and says whether it existed.
pub async fn user_delete_removes_roles(repos: &Repos) {
    let users = repos.users.as_ref();
    users.create_user(user("gone")).await.expect("create");
    users.create_user(user("stays")).await.expect("create");
    users
        .add_role(binding("ROLE_X", "gone"))
        .await
        .expect("role");
    users
        .add_role(binding("ROLE_X", "stays"))
        .await
        .expect("role");
    assert!(users.delete_user("gone").await.expect("delete"));
    assert_eq!(users.get_user("gone").await.expect("get"), None);
    let left = users
        .list_roles("", "ROLE_X", MatchMode::Exact, all())
        .await
        .expect("roles");
    assert_eq!(left.items, vec![binding("ROLE_X", "stays")]);
    assert!(!users.delete_user("gone").await.expect("delete again"));
}

/// Listing filters exactly or by glob, orders by name, and pages.
pub async fn list_users_filters_orders_and_pages(repos: &Repos) {
    let users = repos.users.as_ref();
    for name in ["b1", "a2", "a1", "c_1"] {
        users.create_user(user(name)).await.expect("create");
    }
    let names = |page: nacos_core::Page<User>| -> Vec<String> {
        page.items.into_iter().map(|u| u.username).collect()
    };
    let everyone = users
        .list_users("", MatchMode::Exact, all())
        .await
        .expect("list");
    assert_eq!(everyone.total_count, 4);
    assert_eq!(names(everyone), ["a1", "a2", "b1", "c_1"]);
    let exact = users
        .list_users("a1", MatchMode::Exact, all())
        .await
        .expect("exact");
    assert_eq!(names(exact), ["a1"]);
    let blur = users
        .list_users("a*", MatchMode::Blur, all())
        .await
        .expect("blur");
    assert_eq!(names(blur), ["a1", "a2"]);
    let literal = users
        .list_users("c_*", MatchMode::Blur, all())
        .await
        .expect("underscore is literal");
    assert_eq!(names(literal), ["c_1"]);
    let second = users
        .list_users("", MatchMode::Exact, PageRequest::new(2, 3))
        .await
        .expect("page 2");
    assert_eq!(second.total_count, 4);
    assert_eq!(second.pages_available, 2);
    assert_eq!(names(second), ["c_1"]);
}

/// Role bindings: add, refuse duplicates, list by user or role ordered by role then user,
/// remove from one user or from everyone.
pub async fn roles_add_list_remove(repos: &Repos) {
    let users = repos.users.as_ref();
    for (role, name) in [
        ("ROLE_ADMIN", "bob"),
        ("ROLE_ADMIN", "alice"),
        ("dev", "alice"),
        ("dev", "carol"),
    ] {
        users.add_role(binding(role, name)).await.expect("add role");
    }
    assert_err!(
        users.add_role(binding("dev", "alice")).await,
        RepoError::AlreadyExists(_),
        "adding a binding twice"
    );
    let all_roles = users
        .list_roles("", "", MatchMode::Exact, all())
        .await
        .expect("list");
    assert_eq!(
        all_roles.items,
        vec![
            binding("ROLE_ADMIN", "alice"),
            binding("ROLE_ADMIN", "bob"),
            binding("dev", "alice"),
            binding("dev", "carol"),
        ]
    );
    let of_alice = users
        .list_roles("alice", "", MatchMode::Exact, all())
        .await
        .expect("by user");
    assert_eq!(of_alice.total_count, 2);
    let admins = users
        .list_roles("", "ROLE_*", MatchMode::Blur, all())
        .await
        .expect("by role glob");
    assert_eq!(admins.total_count, 2);
    assert_eq!(
        users.remove_role("dev", Some("alice")).await.expect("one"),
        1
    );
    assert_eq!(users.remove_role("ROLE_ADMIN", None).await.expect("all"), 2);
    assert_eq!(
        users.remove_role("ROLE_ADMIN", None).await.expect("none"),
        0
    );
    let left = users
        .list_roles("", "", MatchMode::Exact, all())
        .await
        .expect("list");
    assert_eq!(left.items, vec![binding("dev", "carol")]);
}

/// Permissions: add, refuse duplicates, list by role ordered by role, resource, action,
/// remove (saying whether it existed).
pub async fn permissions_add_list_remove(repos: &Repos) {
    let users = repos.users.as_ref();
    for (role, resource, action) in [
        ("dev", "ns-b:*:*", "r"),
        ("dev", "ns-a:*:*", "rw"),
        ("dev", "ns-a:*:*", "r"),
        ("ops", "*:*:*", "rw"),
    ] {
        users
            .add_permission(permission(role, resource, action))
            .await
            .expect("add permission");
    }
    assert_err!(
        users.add_permission(permission("ops", "*:*:*", "rw")).await,
        RepoError::AlreadyExists(_),
        "adding a permission twice"
    );
    let dev = users
        .list_permissions("dev", MatchMode::Exact, all())
        .await
        .expect("dev");
    assert_eq!(
        dev.items,
        vec![
            permission("dev", "ns-a:*:*", "r"),
            permission("dev", "ns-a:*:*", "rw"),
            permission("dev", "ns-b:*:*", "r"),
        ]
    );
    let everything = users
        .list_permissions("", MatchMode::Exact, all())
        .await
        .expect("all");
    assert_eq!(everything.total_count, 4);
    assert!(
        users
            .remove_permission(&permission("dev", "ns-b:*:*", "r"))
            .await
            .expect("remove")
    );
    assert!(
        !users
            .remove_permission(&permission("dev", "ns-b:*:*", "r"))
            .await
            .expect("remove again")
    );
    let dev = users
        .list_permissions("dev", MatchMode::Exact, all())
        .await
        .expect("dev");
    assert_eq!(dev.total_count, 2);
}
