//! `commissions` routes: creators' offerings (`/commissions/api/commission-creator/`, the public
//! lists) and fans' paid requests through their lifecycle (`/commissions/api/commission-user/`).
//! The rules are `oasis_commissions`'; payments and refunds go through billing
//! (`crate::workflows::commissions`).
use crate::context::AppContext;
use crate::error::ApiError;
use crate::web;
use crate::workflows::commissions::FlowError;
use actix_web::http::StatusCode;
use oasis_commissions::CommissionError;

mod dto;
mod offerings;
mod requests;

pub use dto::RequestBody;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        offerings::list_own, offerings::create, offerings::retrieve, offerings::update,
        offerings::destroy, offerings::deletable, offerings::list_of_creator,
        offerings::list_public,
        requests::create, requests::list, requests::retrieve, requests::update,
        requests::confirm,
    ),
    components(schemas(
        dto::OfferingDto, dto::PublicOfferingDto, dto::OfferingPage, dto::PublicOfferingPage,
        dto::OfferingBody, dto::Deletable, dto::RequestBody, dto::RequestStarted, dto::RequestDto,
        dto::RequestPage, dto::StatusBody, dto::ConfirmBody, dto::Named, dto::Person,
        dto::HistoryDto, dto::DeliveryDto, dto::DeliveredFile, dto::RefundDto, requests::Role,
    )),
    tags((name = "commissions", description = "Commission offerings with slots, paid requests and their lifecycle"))
)]
pub struct ApiDoc;

pub fn config(cfg: &mut web::ServiceConfig, _ctx: &AppContext) {
    cfg.service(
        web::resource("/commissions/api/commission-creator")
            .route(web::get().to(offerings::list_own))
            .route(web::post().to(offerings::create)),
    )
    .service(
        web::resource("/commissions/api/commission-creator/{id}")
            .route(web::get().to(offerings::retrieve))
            .route(web::patch().to(offerings::update))
            .route(web::delete().to(offerings::destroy)),
    )
    .service(
        web::resource("/commissions/api/deletable/{id}").route(web::get().to(offerings::deletable)),
    )
    .service(
        web::resource("/commissions/list/{creator_id}")
            .route(web::get().to(offerings::list_of_creator)),
    )
    .service(
        web::resource("/commissions/api/get-commissions")
            .route(web::get().to(offerings::list_public)),
    )
    .service(
        web::resource("/commissions/api/commission-user").route(web::post().to(requests::create)),
    )
    .service(
        web::resource("/commissions/api/commission-user/{id}")
            .route(web::get().to(requests::retrieve))
            .route(web::patch().to(requests::update)),
    )
    .service(
        web::resource("/commissions/api/commission-user/{id}/confirm")
            .route(web::post().to(requests::confirm)),
    )
    .service(
        web::resource("/commissions/api/get-commissions-user").route(web::get().to(requests::list)),
    );
}

/// The one place commission errors become HTTP errors.
impl From<CommissionError> for ApiError {
    fn from(e: CommissionError) -> Self {
        match e {
            CommissionError::Invalid(f) => ApiError::Validation(f),
            CommissionError::NotFound => ApiError::not_found(),
            CommissionError::NotCreator => {
                ApiError::forbidden("Only creators can offer commissions.")
            }
            CommissionError::Forbidden(m) => ApiError::forbidden(m),
            CommissionError::Conflict { code, detail } => {
                ApiError::detail(StatusCode::CONFLICT, code, detail)
            }
            CommissionError::Repo(r) => r.into(),
        }
    }
}

impl From<FlowError> for ApiError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Commission(c) => c.into(),
            FlowError::Billing(b) => crate::routes::billing::api_error(b),
            FlowError::Db(d) => d.into(),
        }
    }
}
