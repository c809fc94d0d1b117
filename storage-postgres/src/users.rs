//! [`UserRepo`] on Nacos's `users`, `roles` and `permissions` tables. Text orderings use the
//! `"C"` collation (byte order), whatever the database's default collation.

use async_trait::async_trait;
use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::sql_types::Text;
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
    TextExpressionMethods,
};
use diesel_async::RunQueryDsl;
use nacos_core::{
    MatchMode, Page, PageRequest, Permission, RepoError, RoleBinding, User, UserRepo,
};

use crate::PgStore;
use crate::convert::{TextFilter, page_of, text_filter, updated_row};
use crate::schema::{permissions as p, roles as r, users as u};

#[derive(Queryable, Selectable)]
#[diesel(table_name = u, check_for_backend(Pg))]
pub(crate) struct UserRow {
    username: String,
    password: String,
    enabled: bool,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            username: row.username,
            password_hash: row.password,
            enabled: row.enabled,
        }
    }
}

fn users_matching(username: &str, mode: MatchMode) -> u::BoxedQuery<'static, Pg> {
    let q = u::table.into_boxed();
    if username.is_empty() {
        return q;
    }
    match text_filter(username, mode) {
        TextFilter::Equal(v) => q.filter(u::username.eq(v)),
        TextFilter::Like(pattern) => q.filter(u::username.like(pattern)),
    }
}

fn roles_matching(username: &str, role: &str, mode: MatchMode) -> r::BoxedQuery<'static, Pg> {
    let mut q = r::table.into_boxed();
    if !username.is_empty() {
        q = match text_filter(username, mode) {
            TextFilter::Equal(v) => q.filter(r::username.eq(v)),
            TextFilter::Like(pattern) => q.filter(r::username.like(pattern)),
        };
    }
    if !role.is_empty() {
        q = match text_filter(role, mode) {
            TextFilter::Equal(v) => q.filter(r::role.eq(v)),
            TextFilter::Like(pattern) => q.filter(r::role.like(pattern)),
        };
    }
    q
}

fn permissions_matching(role: &str, mode: MatchMode) -> p::BoxedQuery<'static, Pg> {
    let q = p::table.into_boxed();
    if role.is_empty() {
        return q;
    }
    match text_filter(role, mode) {
        TextFilter::Equal(v) => q.filter(p::role.eq(v)),
        TextFilter::Like(pattern) => q.filter(p::role.like(pattern)),
    }
}

#[async_trait]
impl UserRepo for PgStore {
    async fn get_user(&self, username: &str) -> Result<Option<User>, RepoError> {
        self.read(async |conn| {
            let row: Option<UserRow> = u::table
                .filter(u::username.eq(username))
                .select(UserRow::as_select())
                .first(conn)
                .await
                .optional()?;
            Ok(row.map(User::from))
        })
        .await
    }

    async fn list_users(
        &self,
        username: &str,
        mode: MatchMode,
        page: PageRequest,
    ) -> Result<Page<User>, RepoError> {
        self.read(async |conn| {
            let count: i64 = users_matching(username, mode)
                .count()
                .get_result(conn)
                .await?;
            page_of(count, page, async |limit, offset| {
                let rows: Vec<UserRow> = users_matching(username, mode)
                    .order(sql::<Text>(r#"username COLLATE "C""#))
                    .limit(limit)
                    .offset(offset)
                    .select(UserRow::as_select())
                    .load(conn)
                    .await?;
                Ok(rows.into_iter().map(User::from).collect())
            })
            .await
        })
        .await
    }

    async fn create_user(&self, user: User) -> Result<(), RepoError> {
        let result = self
            .run(async |conn| {
                diesel::insert_into(u::table)
                    .values((
                        u::username.eq(&user.username),
                        u::password.eq(&user.password_hash),
                        u::enabled.eq(user.enabled),
                    ))
                    .execute(conn)
                    .await?;
                Ok(())
            })
            .await;
        match result {
            Err(RepoError::AlreadyExists(_)) => {
                Err(RepoError::AlreadyExists(format!("user {}", user.username)))
            }
            other => other,
        }
    }

    async fn update_password(&self, username: &str, password_hash: &str) -> Result<(), RepoError> {
        self.run(async |conn| {
            let updated = diesel::update(u::table.filter(u::username.eq(username)))
                .set(u::password.eq(password_hash))
                .execute(conn)
                .await?;
            updated_row(updated, || RepoError::NotFound(format!("user {username}")))
        })
        .await
    }

    async fn delete_user(&self, username: &str) -> Result<bool, RepoError> {
        self.in_tx(async |conn| {
            diesel::delete(r::table.filter(r::username.eq(username)))
                .execute(conn)
                .await?;
            let deleted = diesel::delete(u::table.filter(u::username.eq(username)))
                .execute(conn)
                .await?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn list_roles(
        &self,
        username: &str,
        role: &str,
        mode: MatchMode,
        page: PageRequest,
    ) -> Result<Page<RoleBinding>, RepoError> {
        self.read(async |conn| {
            let count: i64 = roles_matching(username, role, mode)
                .count()
                .get_result(conn)
                .await?;
            page_of(count, page, async |limit, offset| {
                let rows: Vec<(String, String)> = roles_matching(username, role, mode)
                    .order((
                        sql::<Text>(r#"role COLLATE "C""#),
                        sql::<Text>(r#"username COLLATE "C""#),
                    ))
                    .limit(limit)
                    .offset(offset)
                    .select((r::role, r::username))
                    .load(conn)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(role, username)| RoleBinding { role, username })
                    .collect())
            })
            .await
        })
        .await
    }

    async fn add_role(&self, binding: RoleBinding) -> Result<(), RepoError> {
        let result = self
            .run(async |conn| {
                diesel::insert_into(r::table)
                    .values((r::username.eq(&binding.username), r::role.eq(&binding.role)))
                    .execute(conn)
                    .await?;
                Ok(())
            })
            .await;
        match result {
            Err(RepoError::AlreadyExists(_)) => Err(RepoError::AlreadyExists(format!(
                "role {} of user {}",
                binding.role, binding.username
            ))),
            other => other,
        }
    }

    async fn remove_role(&self, role: &str, username: Option<&str>) -> Result<u64, RepoError> {
        self.run(async |conn| {
            let removed = match username {
                Some(user) => {
                    diesel::delete(
                        r::table
                            .filter(r::role.eq(role))
                            .filter(r::username.eq(user)),
                    )
                    .execute(conn)
                    .await?
                }
                None => {
                    diesel::delete(r::table.filter(r::role.eq(role)))
                        .execute(conn)
                        .await?
                }
            };
            Ok(u64::try_from(removed).unwrap_or_default())
        })
        .await
    }

    async fn list_permissions(
        &self,
        role: &str,
        mode: MatchMode,
        page: PageRequest,
    ) -> Result<Page<Permission>, RepoError> {
        self.read(async |conn| {
            let count: i64 = permissions_matching(role, mode)
                .count()
                .get_result(conn)
                .await?;
            page_of(count, page, async |limit, offset| {
                let rows: Vec<(String, String, String)> = permissions_matching(role, mode)
                    .order((
                        sql::<Text>(r#"role COLLATE "C""#),
                        sql::<Text>(r#"resource COLLATE "C""#),
                        sql::<Text>(r#"action COLLATE "C""#),
                    ))
                    .limit(limit)
                    .offset(offset)
                    .select((p::role, p::resource, p::action))
                    .load(conn)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(role, resource, action)| Permission {
                        role,
                        resource,
                        action,
                    })
                    .collect())
            })
            .await
        })
        .await
    }

    async fn add_permission(&self, permission: Permission) -> Result<(), RepoError> {
        let result = self
            .run(async |conn| {
                diesel::insert_into(p::table)
                    .values((
                        p::role.eq(&permission.role),
                        p::resource.eq(&permission.resource),
                        p::action.eq(&permission.action),
                    ))
                    .execute(conn)
                    .await?;
                Ok(())
            })
            .await;
        match result {
            Err(RepoError::AlreadyExists(_)) => Err(RepoError::AlreadyExists(format!(
                "permission {} {} of role {}",
                permission.action, permission.resource, permission.role
            ))),
            other => other,
        }
    }

    async fn remove_permission(&self, permission: &Permission) -> Result<bool, RepoError> {
        self.run(async |conn| {
            let removed = diesel::delete(
                p::table
                    .filter(p::role.eq(&permission.role))
                    .filter(p::resource.eq(&permission.resource))
                    .filter(p::action.eq(&permission.action)),
            )
            .execute(conn)
            .await?;
            Ok(removed > 0)
        })
        .await
    }
}
