"""Organization-trail adaptations of moto 5.2.5, installed by server.py (``org_trail.install()``).

Kept apart from server.py's other adaptations so the Organizations work of different areas
merges without conflict. Each function names the AWS behaviour it restores; ctguard's product
code stays written for real AWS.
"""

from __future__ import annotations


def install() -> None:
    patch_cloudtrail_delegated_administrators()


def patch_cloudtrail_delegated_administrators() -> None:
    """ListDelegatedAdministrators as AWS answers it for CloudTrail (a model fix).

    AWS lets the management account register a CloudTrail delegated administrator
    (service principal cloudtrail.amazonaws.com); moto 5.2.5 refuses that principal as
    unrecognized. And AWS answers ListDelegatedAdministrators only to the management account and
    to delegated administrators (Organizations API Reference): a plain member gets
    AccessDeniedException, where moto answers from the member's own, empty state. Here a
    delegated administrator gets the management account's answer, a plain member the error.
    """
    from moto.organizations.exceptions import OrganizationsClientError
    from moto.organizations.models import FakeDelegatedAdministrator, OrganizationsBackend, organizations_backends

    if "cloudtrail.amazonaws.com" not in FakeDelegatedAdministrator.SUPPORTED_SERVICES:
        FakeDelegatedAdministrator.SUPPORTED_SERVICES.append("cloudtrail.amazonaws.com")

    original = OrganizationsBackend.list_delegated_administrators

    def list_delegated_administrators(self, **kwargs):  # noqa: ANN001, ANN003
        if self.org is None and self.account_id in organizations_backends.master_accounts:
            management, partition = organizations_backends.master_accounts[self.account_id]
            backend = organizations_backends[management][partition]
            if any(admin.account.id == self.account_id for admin in backend.admins):
                return original(backend, **kwargs)
            raise OrganizationsClientError(
                "AccessDeniedException",
                "You don't have permissions to access this resource.",
            )
        return original(self, **kwargs)

    OrganizationsBackend.list_delegated_administrators = list_delegated_administrators
