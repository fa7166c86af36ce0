//! PCI pause and resume of a live call's recording (issue 17, item 5): the agent's desktop (a
//! token of role `agent`) or an admin pauses the recording while a card number is spoken. The
//! call must be live on this node (its relay copies the audio to the recorder here); the
//! interval becomes silence in the file and is listed on the CDR (`b2bua::call::pause`).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::ApiState;
use crate::b2bua::{PauseAction, PauseOutcome, RecordingControlError};

/// How long the call task may take to answer (it answers between two of its events).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The recording's state after a pause or resume.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingPauseState {
    /// The call id.
    pub id: String,
    /// Whether the recording is paused now.
    pub paused: bool,
    /// Where in the recording the pause began (pause) or ended (resume), in ms from its start.
    pub at_ms: i64,
}

#[utoipa::path(
    post,
    path = "/api/v1/calls/{id}/recording/pause",
    tag = "agent",
    description = "Pause the recording of a live call on this node (PCI: a card number is \
                   about to be spoken). From now until the resume (or `[recording] \
                   max_pause_secs`, after which it resumes by itself) the file holds silence on \
                   both channels; no audio of the interval is written. The interval and the \
                   token's name are listed on the CDR. 409 when already paused or not being \
                   recorded. Role: agent or admin.",
    params(("id" = String, Path, description = "The call id (as in the live list)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Paused", body = RecordingPauseState),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an agent or admin token", body = ErrorBody),
        (status = 404, description = "No such live call on this node", body = ErrorBody),
        (status = 409, description = "Already paused, or the call is not being recorded", body = ErrorBody),
        (status = 503, description = "The call did not answer in time", body = ErrorBody),
    )
)]
pub(crate) async fn pause(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<RecordingPauseState>, ApiError> {
    control(&state, &who, id, PauseAction::Pause).await
}

#[utoipa::path(
    post,
    path = "/api/v1/calls/{id}/recording/resume",
    tag = "agent",
    description = "Resume the paused recording of a live call on this node. 409 when it is \
                   not paused. Role: agent or admin.",
    params(("id" = String, Path, description = "The call id (as in the live list)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Resumed", body = RecordingPauseState),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an agent or admin token", body = ErrorBody),
        (status = 404, description = "No such live call on this node", body = ErrorBody),
        (status = 409, description = "Not paused, or the call is not being recorded", body = ErrorBody),
        (status = 503, description = "The call did not answer in time", body = ErrorBody),
    )
)]
pub(crate) async fn resume(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<RecordingPauseState>, ApiError> {
    control(&state, &who, id, PauseAction::Resume).await
}

async fn control(
    state: &ApiState,
    who: &Principal,
    id: String,
    action: PauseAction,
) -> Result<Json<RecordingPauseState>, ApiError> {
    let not_live = || ApiError::NotFound(format!("no live call {id} on this node"));
    let asked = state
        .deps()
        .registry
        .recording_control(&id, action, &who.name)
        .map_err(|e| match e {
            RecordingControlError::NotLive => not_live(),
            RecordingControlError::Busy => {
                ApiError::Unavailable(format!("call {id} is busy; try again"))
            }
        })?;
    let outcome = match tokio::time::timeout(ANSWER_TIMEOUT, asked).await {
        Ok(Ok(outcome)) => outcome,
        // The call ended before it could answer.
        Ok(Err(_)) => return Err(not_live()),
        Err(_) => {
            return Err(ApiError::Unavailable(format!(
                "call {id} did not answer the {} in time",
                action.as_str()
            )))
        }
    };
    match outcome {
        PauseOutcome::Done { paused, at_ms } => {
            tracing::info!(call_id = %id, by = %who.name, action = action.as_str(), at_ms, "api: recording {}", action.as_str());
            Ok(Json(RecordingPauseState { id, paused, at_ms }))
        }
        PauseOutcome::AlreadyPaused => Err(ApiError::Conflict(format!(
            "the recording of call {id} is already paused"
        ))),
        PauseOutcome::NotPaused => Err(ApiError::Conflict(format!(
            "the recording of call {id} is not paused"
        ))),
        PauseOutcome::NotRecording => Err(ApiError::Conflict(format!(
            "call {id} is not being recorded (not answered, or no recording)"
        ))),
    }
}
