//! Listing a repository's tags (`GET /v2/<name>/tags/list`), every page:
//! destroy reads them all before deleting anything, since a tag outside the
//! resource's own keeps what it names alive.

use reqwest::Method;

use super::Pusher;
use crate::oci::reference::Reference;
use crate::registry::error::RegistryError;

/// Tag lists are paged; a repository with more tags than this is not
/// listed further (the caller then treats the list as incomplete).
const MAX_TAG_PAGES: usize = 100;
const TAGS_PER_PAGE: usize = 1000;

/// Every tag of a repository, from `GET /v2/<name>/tags/list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagList {
    Tags(Vec<String>),
    /// The repository does not exist (404): it has no tags.
    NoRepository,
}

#[derive(serde::Deserialize)]
struct TagsPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Pusher<'_> {
    /// Lists the tags of `repo`, following `Link: <...>; rel="next"` pages
    /// as the distribution spec pages them.
    pub async fn list_tags(&self, repo: &Reference) -> Result<TagList, RegistryError> {
        let mut tags = Vec::new();
        let mut next = Some(format!(
            "/v2/{}/tags/list?n={TAGS_PER_PAGE}",
            repo.repository
        ));
        let shown = format!("{}/{} tags", repo.registry, repo.repository);
        for page_number in 0..MAX_TAG_PAGES {
            let Some(path) = next.take() else {
                return Ok(TagList::Tags(tags));
            };
            let page = self
                .with_retries(repo, super::Access::Push, |auth| {
                    let (path, shown) = (path.clone(), shown.clone());
                    async move {
                        let response = auth
                            .request(Method::GET, auth.resolve(&path)?)
                            .header(reqwest::header::ACCEPT, "application/json")
                            .send()
                            .await
                            .map_err(|e| auth.unreachable(e))?;
                        match response.status().as_u16() {
                            200 => {}
                            404 => return Ok(None),
                            _ => return Err(auth.failure(response, &shown).await),
                        }
                        let link = next_link(response.headers());
                        let body = crate::registry::body::read_limited(response, MAX_TAGS_BODY)
                            .await
                            .map_err(|detail| RegistryError::InvalidManifest {
                                detail: format!("{shown}: {detail}"),
                            })?;
                        let page: TagsPage = serde_json::from_slice(&body).map_err(|e| {
                            RegistryError::InvalidManifest {
                                detail: format!("{shown}: the tag list is not JSON: {e}"),
                            }
                        })?;
                        Ok(Some((page.tags.unwrap_or_default(), link)))
                    }
                })
                .await?;
            let Some((page, link)) = page else {
                if page_number == 0 {
                    return Ok(TagList::NoRepository);
                }
                // The repository answered the first pages: a later 404 leaves
                // the list incomplete, and an incomplete list protects nothing.
                return Err(RegistryError::NotFound {
                    reference: shown.clone(),
                    detail: format!(
                        "page {} of the tag list answered 404 after {} tags were listed; the \
                         list is incomplete",
                        page_number + 1,
                        tags.len()
                    ),
                });
            };
            tags.extend(page);
            next = link;
        }
        Err(RegistryError::InvalidManifest {
            detail: format!("{shown}: more than {MAX_TAG_PAGES} pages of tags; not listed further"),
        })
    }
}

/// A tag list page of 1000 names is far below this.
const MAX_TAGS_BODY: usize = 4 * 1024 * 1024;

/// The target of a `Link: </v2/...>; rel="next"` header, if any.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
        .and_then(|part| {
            let start = part.find('<')? + 1;
            let end = part[start..].find('>')? + start;
            Some(part[start..end].to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_follows_rel_next_only() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            "</v2/web/tags/list?n=2&last=b>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("/v2/web/tags/list?n=2&last=b")
        );
        let mut other = reqwest::header::HeaderMap::new();
        other.insert(reqwest::header::LINK, "</x>; rel=\"prev\"".parse().unwrap());
        assert_eq!(next_link(&other), None);
        assert_eq!(next_link(&reqwest::header::HeaderMap::new()), None);
    }
}
