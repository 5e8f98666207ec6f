import type { LifecycleRule } from '@aws-sdk/client-s3';

/**
 * S3's own reading of lifecycle rules, written from the S3 documentation rather than from
 * src/lifecycle.ts (the test server stores rules but never runs them): a rule applies to an
 * object when it is enabled, its prefix matches the object's key and the object carries every
 * tag the filter names; it expires the object once the object is `Days` days old.
 * Returns the first rule that would have expired the object at `ageDays`.
 */
export function expiringRule(rules: readonly LifecycleRule[], bucketKey: string, tags: Record<string, string>, ageDays: number): LifecycleRule | undefined {
  return rules.find((rule) => {
    const filter = rule.Filter ?? {};
    const prefix = filter.And?.Prefix ?? filter.Prefix ?? rule.Prefix ?? '';
    const required = [...(filter.And?.Tags ?? []), ...(filter.Tag ? [filter.Tag] : [])];
    const days = rule.Expiration?.Days;
    return (
      rule.Status === 'Enabled' &&
      days !== undefined &&
      bucketKey.startsWith(prefix) &&
      required.every((tag) => tags[tag.Key!] === tag.Value) &&
      ageDays >= days
    );
  });
}
