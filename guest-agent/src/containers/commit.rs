//! `docker commit` (and each build step's commit): a new image from the container's
//! own layer and its config with the requested changes.

use super::{changes, config, io_err, ContainerError, ContainerService};
use crate::runtime::rootfs::RootfsDirs;

/// What `POST /commit` asks for.
#[derive(Debug, Default, Clone)]
pub struct CommitOptions {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    pub pause: bool,
    pub changes: Vec<String>,
    /// Config fields that override the container's.
    pub config: Option<bollard_stubs::models::ContainerConfig>,
    /// The new image's config exactly (a build step), instead of the container's.
    pub exact_config: Option<bollard_stubs::models::ImageConfig>,
    /// The history line, instead of the container's command.
    pub created_by: Option<String>,
    /// A build step's history details (`images::commit::CommitRequest` says what
    /// they do).
    pub empty_before: Vec<String>,
    pub history_comment: Option<String>,
    /// A build step's commit: saved with the build's end (`images::commit`).
    pub save_later: bool,
}

/// The image-config part of a container's config.
fn image_config(c: &bollard_stubs::models::ContainerConfig) -> bollard_stubs::models::ImageConfig {
    bollard_stubs::models::ImageConfig {
        user: c.user.clone(),
        exposed_ports: c.exposed_ports.clone(),
        env: c.env.clone(),
        cmd: c.cmd.clone(),
        healthcheck: c.healthcheck.clone(),
        args_escaped: c.args_escaped,
        volumes: c.volumes.clone(),
        working_dir: c.working_dir.clone(),
        entrypoint: c.entrypoint.clone(),
        on_build: c.on_build.clone(),
        labels: c.labels.clone(),
        stop_signal: c.stop_signal.clone(),
        shell: c.shell.clone(),
    }
}

impl ContainerService {
    /// `docker commit`: a new image from the container's changes. A running container
    /// is frozen meanwhile (unless `pause` is false), as dockerd does.
    pub async fn commit(
        &self,
        images: &std::sync::Arc<crate::images::ImageService>,
        name: &str,
        opts: CommitOptions,
    ) -> Result<String, ContainerError> {
        let rec = self.record(name)?;
        let mut cfg = opts
            .exact_config
            .clone()
            .unwrap_or_else(|| image_config(&rec.config));
        if let Some(over) = &opts.config {
            let o = image_config(over);
            macro_rules! take {
                ($($f:ident),*) => { $( if o.$f.is_some() { cfg.$f = o.$f.clone(); } )* };
            }
            take!(
                user,
                exposed_ports,
                env,
                cmd,
                healthcheck,
                volumes,
                working_dir,
                entrypoint,
                on_build,
                labels,
                stop_signal,
                shell
            );
        }
        for c in &opts.changes {
            changes::apply(&mut cfg, c).map_err(ContainerError::InvalidArgument)?;
        }
        let mut freeze = opts.pause && rec.running() && !rec.state.paused;
        if freeze {
            if let Err(e) = self.set_paused(&rec.id, true).await {
                // Its process exited since its record was read (the exit may not be
                // recorded yet): its layer is already still.
                if self.runtime.alive(rec.state.pid) {
                    return Err(e);
                }
                freeze = false;
            }
        }
        let upper = RootfsDirs::under(&self.container_dir(&rec.id)).upper;
        if !upper.is_dir() {
            std::fs::create_dir_all(&upper).map_err(io_err("creating the container's layer"))?;
        }
        let created_by = opts
            .created_by
            .clone()
            .unwrap_or_else(|| config::command(&rec.config).join(" "));
        // On the blocking pool rather than in place: a build runs its stages as futures
        // of one task, and one stage's commit must not stall the others.
        let request = crate::images::commit::CommitRequest {
            parent: rec.image_id.clone(),
            upper,
            config: cfg,
            author: opts.author.clone(),
            comment: opts.comment.clone(),
            created_by,
            empty_before: opts.empty_before.clone(),
            new_layer: true,
            history_comment: opts.history_comment.clone(),
            save_later: opts.save_later,
        };
        let result = images.commit_blocking(request).await;
        if freeze {
            let _ = self.set_paused(&rec.id, false).await;
        }
        let id = result?;
        if let Some(repo) = opts.repo.as_deref().filter(|r| !r.is_empty()) {
            images.tag(&id, repo, opts.tag.as_deref().filter(|t| !t.is_empty()))?;
        }
        self.emit(
            &rec,
            "commit",
            &[("comment", opts.comment.unwrap_or_default())],
        );
        Ok(id)
    }

    /// Takes paths out of a stopped container's own layer where they are empty — the
    /// mountpoints the runtime created for a build step's mounts — so that a commit
    /// does not record them. `paths` are relative to the root, deepest first.
    pub fn drop_empty_from_layer(
        &self,
        name: &str,
        paths: &[String],
    ) -> Result<(), ContainerError> {
        let rec = self.record(name)?;
        let upper = RootfsDirs::under(&self.container_dir(&rec.id)).upper;
        for p in paths {
            let path = upper.join(p);
            let Ok(meta) = path.symlink_metadata() else {
                continue;
            };
            let _ = if meta.is_dir() {
                std::fs::remove_dir(&path) // fails, as it should, unless empty
            } else if meta.is_file() && meta.len() == 0 {
                std::fs::remove_file(&path)
            } else {
                Ok(())
            };
        }
        Ok(())
    }
}
