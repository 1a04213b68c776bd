//! Catalogues: activity kinds, digital services, affiliations and data elements, with
//! Vietnamese and English names, seeded with the standard codes and extensible by admins.
pub mod defaults;
pub mod resolvers;
pub mod service;
