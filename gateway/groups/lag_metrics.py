"""Consumer-group lag for `/metrics`: records left to read per tenant, group and topic.

Computed when scraped, from the group store and the log's offsets only (no
record is read), so the figure is as fresh as the scrape and nothing has to
be kept up to date between scrapes. A scrape reads at most `MAX_LAG_GROUPS`
groups (tenants by name, each tenant's groups by name); the groups past the
cap are counted, not read, so a scrape's cost stays bounded however many
groups there are. Lag is the same figure `GET /v1/groups/{group}` shows:
end offset minus the committed offset, or what the reset policy leaves to
read for a partition without a commit.
"""

from __future__ import annotations

from gateway.coordinator.assignors import TopicPartition
from gateway.coordinator.service import GroupService
from gateway.groups.describe import unread_from
from gateway.http.metrics import GroupLag, GroupLags
from gateway.http.names import client_name, tenant_prefix
from storage.errors import TopicNotFound
from tenants.directory import TenantDirectory

MAX_LAG_GROUPS = 500


async def group_lags(
    service: GroupService, directory: TenantDirectory, *, max_groups: int = MAX_LAG_GROUPS
) -> GroupLags:
    """The lag of every (tenant, group, topic) of the first `max_groups` groups."""
    rows: list[GroupLag] = []
    read = omitted = 0
    for tenant in sorted(await directory.list_tenants(), key=lambda t: t.name):
        for stored in await service.groups.list_groups(tenant_prefix(tenant.uid)):
            if read >= max_groups:
                omitted += 1
                continue
            read += 1
            loaded = await service.load(stored)
            if loaded is None:
                continue  # deleted meanwhile
            group = loaded.group
            commits = {
                TopicPartition(c.topic, c.partition): c.offset
                for c in await service.groups.committed_offsets(stored)
            }
            partitions = {TopicPartition(t, p) for t, n in group.partitions for p in range(n)}
            by_topic: dict[str, int] = {}
            for tp in sorted(partitions | set(commits)):
                try:
                    info = await service.log.offsets(tp.topic, tp.partition)
                except TopicNotFound:
                    continue
                position = unread_from(group, commits.get(tp), info)
                by_topic[tp.topic] = by_topic.get(tp.topic, 0) + info.end_offset - position
            for topic, lag in sorted(by_topic.items()):
                rows.append(
                    GroupLag(
                        tenant=tenant.name,
                        group=client_name(tenant.uid, stored),
                        topic=client_name(tenant.uid, topic),
                        stored_topic=topic,
                        lag=lag,
                    )
                )
    return GroupLags(rows, omitted)
