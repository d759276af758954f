//! The route builder: one declaration per resource path. Wherever a GET exists, HEAD
//! answers with the same handler (actix drops the body and keeps the headers), and every
//! other method gets Keystone's JSON 405, so no route can forget either.

use actix_web::dev::Handler;
use actix_web::http::Method;
use actix_web::{web, FromRequest, HttpResponse, Responder};

use crate::api::error::ApiError;

type Step = Box<dyn FnOnce(actix_web::Resource) -> actix_web::Resource>;

/// One path and its handlers, as `resource("/v3/x").get(list).post(create)`.
pub struct Route {
    path: String,
    methods: Vec<Method>,
    resource: actix_web::Resource,
    /// HEAD through the GET handler, added last unless a HEAD handler of its own came.
    implied_head: Option<Step>,
}

/// Starts a route for `path` (actix's `{name}` placeholders).
pub fn resource(path: impl Into<String>) -> Route {
    let path = path.into();
    Route {
        resource: web::resource(path.clone()),
        path,
        methods: Vec::new(),
        implied_head: None,
    }
}

macro_rules! method {
    ($name:ident, $route:ident, $method:expr) => {
        pub fn $name<F, Args>(mut self, handler: F) -> Self
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            self.methods.push($method);
            self.resource = self.resource.route(web::$route().to(handler));
            self
        }
    };
}

impl Route {
    /// GET, and HEAD with the same handler.
    pub fn get<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args> + Clone,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.methods.push(Method::GET);
        let head = handler.clone();
        self.resource = self.resource.route(web::get().to(handler));
        if !self.methods.contains(&Method::HEAD) {
            self.methods.push(Method::HEAD);
            self.implied_head = Some(Box::new(move |r| r.route(web::head().to(head))));
        }
        self
    }

    /// A HEAD handler of its own (where Keystone's HEAD differs from its GET).
    pub fn head<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.implied_head = None;
        if !self.methods.contains(&Method::HEAD) {
            self.methods.push(Method::HEAD);
        }
        self.resource = self.resource.route(web::head().to(handler));
        self
    }

    /// Data for this route's handlers (`req.app_data::<T>()`), e.g. what a shared
    /// handler is about.
    pub fn data<T: 'static>(mut self, data: T) -> Self {
        self.resource = self.resource.app_data(data);
        self
    }

    method!(post, post, Method::POST);
    method!(put, put, Method::PUT);
    method!(patch, patch, Method::PATCH);
    method!(delete, delete, Method::DELETE);

    fn finish(mut self) -> (RouteInfo, actix_web::Resource) {
        let mut resource = self.resource;
        if let Some(head) = self.implied_head.take() {
            resource = head(resource);
        }
        // Every path answers OPTIONS with what it allows, as Flask does.
        self.methods.push(Method::OPTIONS);
        let allow = self
            .methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let options_allow = allow.clone();
        let resource = resource.route(web::method(Method::OPTIONS).to(move || {
            let allow = options_allow.clone();
            async move {
                HttpResponse::Ok()
                    .insert_header((actix_web::http::header::ALLOW, allow))
                    .finish()
            }
        }));
        let resource = resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move {
                let err = actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
                let mut res: HttpResponse = err;
                if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&allow) {
                    res.headers_mut().insert(actix_web::http::header::ALLOW, v);
                }
                res
            }
        }));
        (
            RouteInfo {
                path: self.path,
                methods: self.methods,
            },
            resource,
        )
    }
}

/// What the route table says about one path: for tests and documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    pub path: String,
    pub methods: Vec<Method>,
}

/// Every route of the server, in registration order.
#[derive(Default)]
pub struct Router {
    routes: Vec<(RouteInfo, actix_web::Resource)>,
}

impl Router {
    pub fn add(&mut self, route: Route) -> &mut Self {
        self.routes.push(route.finish());
        self
    }

    pub fn table(&self) -> Vec<RouteInfo> {
        self.routes.iter().map(|(info, _)| info.clone()).collect()
    }

    pub fn register(self, cfg: &mut web::ServiceConfig) {
        for (_, resource) in self.routes {
            cfg.service(resource);
        }
    }
}
