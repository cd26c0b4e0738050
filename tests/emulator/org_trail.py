"""Organization-trail adaptations of moto 5.2.5, installed by server.py (``org_trail.install()``).

Kept apart from server.py's other adaptations so the Organizations work of different areas
merges without conflict. Each function names the AWS behaviour it restores; ctguard's product
code stays written for real AWS.
"""

from __future__ import annotations


def install() -> None:
    patch_cloudtrail_delegated_administrators()
    patch_cloudtrail_shadow_organization_trails()


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


def patch_cloudtrail_shadow_organization_trails() -> None:
    """A member account sees its organization's trails as shadow trails (a model fix).

    AWS's DescribeTrails with IncludeShadowTrails (the default) lists, in a member account, the
    organization trails of its organization ("the replication of an organization trail in
    member accounts", CloudTrail API Reference, DescribeTrails), and GetTrailStatus answers for
    them by ARN. moto 5.2.5 lists only the caller's own trails. Here a member's DescribeTrails
    with shadow trails also lists the management account's organization trails that record
    its region (multi-region ones, or those homed there); GetTrailStatus, which moto answers
    from that same list, then finds them by ARN.
    """
    from moto.cloudtrail.models import CloudTrailBackend, cloudtrail_backends
    from moto.organizations.models import organizations_backends

    original = CloudTrailBackend.describe_trails

    def describe_trails(self, include_shadow_trails):  # noqa: ANN001
        trails = list(original(self, include_shadow_trails))
        member = organizations_backends.master_accounts.get(self.account_id)
        if include_shadow_trails and member is not None:
            management, _partition = member
            for backend in cloudtrail_backends[management].values():
                for trail in backend.trails.values():
                    here = trail.is_multi_region or trail.region_name == self.region_name
                    if trail.is_org_trail and here and trail not in trails:
                        trails.append(trail)
        return trails

    CloudTrailBackend.describe_trails = describe_trails
