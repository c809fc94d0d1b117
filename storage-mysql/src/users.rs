//! [`UserRepo`] on Nacos's `users`, `roles` and `permissions` tables. Passwords are stored as
//! given (BCrypt hashes). `get_user` reads the primary (a login right after a user is created
//! must find it); the listings may read a replica.

use async_trait::async_trait;
use nacos_core::{
    MatchMode, Page, PageRequest, Permission, RepoResult, RoleBinding, User, UserRepo,
};
use sqlx::MySqlConnection;
use sqlx::mysql::MySqlRow;

use crate::sql::{filter, int, text};
use crate::store::{Failure, MysqlStore, Route};

pub(crate) fn user_from_row(row: &MySqlRow) -> Result<User, sqlx::Error> {
    Ok(User {
        username: text(row, "username")?,
        password_hash: text(row, "password")?,
        enabled: int(row, "enabled")? != 0,
    })
}

/// One page of `SELECT {columns} FROM {table} WHERE {filters} ORDER BY {order}`, with the
/// total count.
async fn page_of<T>(
    c: &mut MySqlConnection,
    table: &str,
    columns: &str,
    filters: Vec<(String, String)>,
    order: &str,
    page: PageRequest,
    decode: fn(&MySqlRow) -> Result<T, sqlx::Error>,
) -> Result<Page<T>, Failure> {
    let condition = if filters.is_empty() {
        "1 = 1".to_string()
    } else {
        filters
            .iter()
            .map(|(sql, _)| sql.as_str())
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let count_sql = format!("SELECT COUNT(*) AS total FROM {table} WHERE {condition}");
    let mut count = sqlx::query(&count_sql);
    for (_, bind) in &filters {
        count = count.bind(bind);
    }
    let total = u64::try_from(int(&count.fetch_one(&mut *c).await?, "total")?).unwrap_or_default();
    let mut items = Vec::new();
    if page.page_size > 0 && (page.offset() as u64) < total {
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE {condition} ORDER BY {order} LIMIT ? OFFSET ?"
        );
        let mut rows = sqlx::query(&sql);
        for (_, bind) in &filters {
            rows = rows.bind(bind);
        }
        let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
        for row in rows
            .bind(i64::from(page.page_size))
            .bind(offset)
            .fetch_all(&mut *c)
            .await?
        {
            items.push(decode(&row)?);
        }
    }
    Ok(Page::new(total, page, items))
}

#[async_trait]
impl UserRepo for MysqlStore {
    async fn get_user(&self, username: &str) -> RepoResult<Option<User>> {
        let username = username.to_string();
        self.read("get user", Route::Primary, move |c| {
            Box::pin(async move {
                let row = sqlx::query(
                    "SELECT username, password, CAST(enabled AS SIGNED) AS enabled FROM users \
                     WHERE username = ?",
                )
                .bind(&username)
                .fetch_optional(&mut *c)
                .await?;
                Ok(row.as_ref().map(user_from_row).transpose()?)
            })
        })
        .await
    }

    async fn list_users(
        &self,
        username: &str,
        mode: MatchMode,
        page: PageRequest,
    ) -> RepoResult<Page<User>> {
        let filters: Vec<_> = filter("username", username, mode).into_iter().collect();
        self.read("list users", Route::Reader, move |c| {
            Box::pin(async move {
                page_of(
                    c,
                    "users",
                    "username, password, CAST(enabled AS SIGNED) AS enabled",
                    filters,
                    "username",
                    page,
                    user_from_row,
                )
                .await
            })
        })
        .await
    }

    async fn create_user(&self, user: User) -> RepoResult<()> {
        self.write("create user", move |c| {
            let user = user.clone();
            Box::pin(async move {
                sqlx::query("INSERT INTO users (username, password, enabled) VALUES (?, ?, ?)")
                    .bind(&user.username)
                    .bind(&user.password_hash)
                    .bind(user.enabled)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn update_password(&self, username: &str, password_hash: &str) -> RepoResult<()> {
        let (username, hash) = (username.to_string(), password_hash.to_string());
        self.write("update password", move |c| {
            let (username, hash) = (username.clone(), hash.clone());
            Box::pin(async move {
                let done = sqlx::query("UPDATE users SET password = ? WHERE username = ?")
                    .bind(&hash)
                    .bind(&username)
                    .execute(&mut *c)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(nacos_core::RepoError::NotFound(format!("user {username}")).into());
                }
                Ok(())
            })
        })
        .await
    }

    async fn delete_user(&self, username: &str) -> RepoResult<bool> {
        let username = username.to_string();
        self.write("delete user", move |c| {
            let username = username.clone();
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM users WHERE username = ?")
                    .bind(&username)
                    .execute(&mut *c)
                    .await?;
                sqlx::query("DELETE FROM roles WHERE username = ?")
                    .bind(&username)
                    .execute(&mut *c)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn list_roles(
        &self,
        username: &str,
        role: &str,
        mode: MatchMode,
        page: PageRequest,
    ) -> RepoResult<Page<RoleBinding>> {
        let filters: Vec<_> = filter("username", username, mode)
            .into_iter()
            .chain(filter("role", role, mode))
            .collect();
        self.read("list roles", Route::Reader, move |c| {
            Box::pin(async move {
                page_of(
                    c,
                    "roles",
                    "role, username",
                    filters,
                    "role, username",
                    page,
                    |row| {
                        Ok(RoleBinding {
                            role: text(row, "role")?,
                            username: text(row, "username")?,
                        })
                    },
                )
                .await
            })
        })
        .await
    }

    async fn add_role(&self, binding: RoleBinding) -> RepoResult<()> {
        self.write("add role", move |c| {
            let binding = binding.clone();
            Box::pin(async move {
                sqlx::query("INSERT INTO roles (username, role) VALUES (?, ?)")
                    .bind(&binding.username)
                    .bind(&binding.role)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn remove_role(&self, role: &str, username: Option<&str>) -> RepoResult<u64> {
        let (role, username) = (role.to_string(), username.map(str::to_string));
        self.write("remove role", move |c| {
            let (role, username) = (role.clone(), username.clone());
            Box::pin(async move {
                let done = match &username {
                    Some(user) => {
                        sqlx::query("DELETE FROM roles WHERE role = ? AND username = ?")
                            .bind(&role)
                            .bind(user)
                            .execute(&mut *c)
                            .await?
                    }
                    None => {
                        sqlx::query("DELETE FROM roles WHERE role = ?")
                            .bind(&role)
                            .execute(&mut *c)
                            .await?
                    }
                };
                Ok(done.rows_affected())
            })
        })
        .await
    }

    async fn list_permissions(
        &self,
        role: &str,
        mode: MatchMode,
        page: PageRequest,
    ) -> RepoResult<Page<Permission>> {
        let filters: Vec<_> = filter("role", role, mode).into_iter().collect();
        self.read("list permissions", Route::Reader, move |c| {
            Box::pin(async move {
                page_of(
                    c,
                    "permissions",
                    "role, resource, action",
                    filters,
                    "role, resource, action",
                    page,
                    |row| {
                        Ok(Permission {
                            role: text(row, "role")?,
                            resource: text(row, "resource")?,
                            action: text(row, "action")?,
                        })
                    },
                )
                .await
            })
        })
        .await
    }

    async fn add_permission(&self, permission: Permission) -> RepoResult<()> {
        self.write("add permission", move |c| {
            let p = permission.clone();
            Box::pin(async move {
                sqlx::query("INSERT INTO permissions (role, resource, action) VALUES (?, ?, ?)")
                    .bind(&p.role)
                    .bind(&p.resource)
                    .bind(&p.action)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn remove_permission(&self, permission: &Permission) -> RepoResult<bool> {
        let permission = permission.clone();
        self.write("remove permission", move |c| {
            let p = permission.clone();
            Box::pin(async move {
                let done = sqlx::query(
                    "DELETE FROM permissions WHERE role = ? AND resource = ? AND action = ?",
                )
                .bind(&p.role)
                .bind(&p.resource)
                .bind(&p.action)
                .execute(&mut *c)
                .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }
}
