//! Template commands: save a new version of an org's access or assignment template, its
//! validity (parses, names only known variables) judged first by the template engine.

use crate::commands::{CommandMeta, Commands, Committed};
use crate::error::AppError;
use leadroute_domain::ids::OrgId;
use leadroute_domain::org::Org;
use leadroute_domain::templates::{Template, TemplateKind, Templates, TemplatesCommand};

impl Commands {
    /// Save `template` as the next version of `kind` for `org`; refused with
    /// `invalid_template` (part, line and reason) when it does not render.
    pub async fn set_template(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        kind: TemplateKind,
        template: &Template,
    ) -> Result<Committed, AppError> {
        let problem = crate::mail::problem(kind, template);
        self.retry(|| async {
            self.load_in_org::<Org>(org, org).await?;
            let loaded = self.load::<Templates>(org).await?;
            let command = TemplatesCommand::SetTemplate {
                org_id: org,
                kind,
                template: template.clone(),
                problem: problem.clone(),
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }
}
