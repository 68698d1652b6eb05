// The one place that builds and parses MQTT topics: filter validation and matching (with the
// `$share/<group>/` prefix of shared subscriptions), topic levels (the region level of meter
// topics), and the demand-response command/ack topics.

class TopicError extends Error {
  readonly code = 'EMS_MQTT_TOPIC';
  constructor(message: string) {
    super(message);
    this.name = 'TopicError';
  }
}

const SHARE_PREFIX = '$share/';

interface ParsedFilter {
  /** The filter as configured, e.g. `$share/ems/meters/+/reading`: what is sent in SUBSCRIBE. */
  subscription: string;
  /** The filter messages are matched against, without the `$share/<group>/` prefix. */
  filter: string;
  /** The shared subscription group, when there is one. */
  shareGroup?: string;
  levels: string[];
}

/** Validates a subscription filter (MQTT 5 §4.7, §4.8.2) and splits off a `$share/<group>/` prefix. */
export function parseTopicFilter(subscription: string): ParsedFilter {
  let filter = subscription;
  let shareGroup: string | undefined;
  if (subscription.startsWith(SHARE_PREFIX)) {
    const rest = subscription.slice(SHARE_PREFIX.length);
    const slash = rest.indexOf('/');
    shareGroup = slash < 0 ? rest : rest.slice(0, slash);
    if (slash < 0 || shareGroup.length === 0 || /[+#]/.test(shareGroup)) {
      throw new TopicError(`topic filter '${subscription}': a shared subscription is $share/<group>/<filter> with a group without + or #`);
    }
    filter = rest.slice(slash + 1);
  }
  if (filter.length === 0) throw new TopicError(`topic filter '${subscription}' is empty`);
  const levels = filter.split('/');
  levels.forEach((level, i) => {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      throw new TopicError(`topic filter '${subscription}': '#' must be a whole level and the last one`);
    }
    if (level.includes('+') && level !== '+') {
      throw new TopicError(`topic filter '${subscription}': '+' must be a whole level`);
    }
  });
  return { subscription, filter, levels, ...(shareGroup !== undefined ? { shareGroup } : {}) };
}

/** The filter a message topic is matched against: `$share/<group>/a/+` -> `a/+`. */
export function stripSharePrefix(subscription: string): string {
  return parseTopicFilter(subscription).filter;
}

/**
 * Whether `topic` matches `filter` (which may carry a `$share/<group>/` prefix). Topics starting
 * with `$` are not matched by a leading wildcard (MQTT 5 §4.7.2).
 */
export function topicMatches(filter: string | ParsedFilter, topic: string): boolean {
  const levels = typeof filter === 'string' ? parseTopicFilter(filter).levels : filter.levels;
  const parts = topic.split('/');
  if (topic.startsWith('$') && (levels[0] === '+' || levels[0] === '#')) return false;
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    if (level === '#') return true;
    const part = parts[i];
    if (part === undefined) return false;
    if (level !== '+' && level !== part) return false;
  }
  return parts.length === levels.length;
}

/** A level of a topic (0-based), or undefined when the topic is shorter or the level empty. */
export function topicLevel(topic: string, index: number): string | undefined {
  let start = 0;
  for (let i = 0; i < index; i++) {
    const next = topic.indexOf('/', start);
    if (next < 0) return undefined;
    start = next + 1;
  }
  const end = topic.indexOf('/', start);
  const level = end < 0 ? topic.slice(start) : topic.slice(start, end);
  return level.length > 0 ? level : undefined;
}

/** The region carried by a meter topic at `regionLevel` (0-based, counted without any `$share` prefix). */
export function regionFromTopic(topic: string, regionLevel: number | undefined): string | undefined {
  return regionLevel === undefined ? undefined : topicLevel(topic, regionLevel);
}

/** Throws unless `topic` is a valid topic to publish to (no wildcards, not empty, no NUL). */
export function assertPublishTopic(topic: string): string {
  if (topic.length === 0 || topic.includes('\u0000') || /[+#]/.test(topic)) {
    throw new TopicError(`topic '${topic}' is not a valid topic to publish to (empty, wildcard or NUL)`);
  }
  return topic;
}

/**
 * Fills `{name}` placeholders of a topic template, e.g. the DR ack topic `ems/{site}/dr/ack/{command_id}`.
 * A value that would add levels or wildcards is refused, so a command id cannot redirect an ack.
 */
export function formatTopic(template: string, vars: Record<string, string>): string {
  const topic = template.replace(/\{([a-z_]+)\}/g, (whole, name: string) => {
    const value = vars[name];
    if (value === undefined) throw new TopicError(`topic template '${template}': no value for {${name}}`);
    if (value.length === 0 || value.includes('\u0000') || /[/+#]/.test(value)) {
      throw new TopicError(`topic template '${template}': value '${value}' for {${name}} is empty or contains / + # or NUL`);
    }
    return value;
  });
  return assertPublishTopic(topic);
}

/** The DR command subscription filter: the configured command topic with its placeholders as `+`. */
export function commandTopicFilter(commandTopic: string, vars: Record<string, string> = {}): string {
  const filter = commandTopic.replace(/\{([a-z_]+)\}/g, (_whole, name: string) => vars[name] ?? '+');
  parseTopicFilter(filter);
  return filter;
}

/** The DR ack topic for one command: `{command_id}` and `{site}` in the configured ack topic are filled. */
export function ackTopicFor(ackTopic: string, vars: { command_id: string; site?: string }): string {
  const all: Record<string, string> = { command_id: vars.command_id, ...(vars.site !== undefined ? { site: vars.site } : {}) };
  return formatTopic(ackTopic, all);
}
