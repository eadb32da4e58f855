//! `latchkey users …`: look up, disable, enable a user or revoke their tokens, straight against
//! auth's database (no restart; running services see it on the next verification).

use super::{Failure, refused};
use latchkey_common::ExposeSecret;
use latchkey_common::clock::rfc3339;
use latchkey_common::config::Config;

/// What to do to one user, named by id or email.
#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Print the user: id, email, provider, disabled, tokens valid after, timestamps.
    Show { user: String },
    /// Refuse every token of the user with USER_DISABLED and issue no new one.
    Disable { user: String },
    /// Let a disabled user in again.
    Enable { user: String },
    /// Refuse every token issued to the user so far (TOKEN_REVOKED); new ones work.
    Revoke { user: String },
}

/// Runs one user command on auth's database.
pub async fn run(command: UsersCommand, config: &Config) -> Result<(), Failure> {
    use latchkey_auth::admin;
    let auth = latchkey_auth::AuthConfig::from_config(config)?;
    let db = latchkey_common::db::connect(auth.database_url.expose_secret())
        .await
        .map_err(anyhow::Error::from)?;
    latchkey_auth::store::migrate(&db)
        .await
        .map_err(anyhow::Error::from)?;
    let now = admin::database_now(&db)
        .await
        .map_err(|error| anyhow::anyhow!("reading the database's clock: {error}"))?;
    let user = match command {
        UsersCommand::Show { user } => admin::find(&db, &user).await,
        UsersCommand::Disable { user } => admin::set_disabled(&db, &user, true).await,
        UsersCommand::Enable { user } => admin::set_disabled(&db, &user, false).await,
        UsersCommand::Revoke { user } => match admin::revoke(&db, &user, now).await {
            Ok(_) => admin::find(&db, &user).await,
            Err(error) => Err(error),
        },
    }
    .map_err(refused)?;
    println!("id:                 {}", user.id);
    println!("email:              {}", user.email);
    println!("provider:           {}/{}", user.provider, user.subject);
    println!("disabled:           {}", user.disabled);
    println!(
        "tokens valid after: {}",
        match user.tokens_valid_after {
            0 => "(never revoked)".to_owned(),
            at => rfc3339(at),
        }
    );
    println!("created:            {}", rfc3339(user.created_at));
    println!("updated:            {}", rfc3339(user.updated_at));
    Ok(())
}
