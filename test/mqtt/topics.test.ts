import { describe, expect, it } from 'vitest';
import { ackTopicFor, commandTopicFilter, formatTopic, parseTopicFilter, regionFromTopic, stripSharePrefix, topicLevel, topicMatches } from '../../src/mqtt/topics.js';

describe('topics', () => {
  it.each([
    ['meters/#', 'meters/north/m1', true],
    ['meters/#', 'meters', true],
    ['meters/+/+', 'meters/north/m1', true],
    ['meters/+/+', 'meters/north', false],
    ['meters/+/+', 'meters/north/m1/x', false],
    ['meters/+', 'meters/', true],
    ['$share/gw/meters/+/reading', 'meters/north/reading', true],
    ['$share/gw/meters/+/reading', 'meters/north/other', false],
    ['#', '$SYS/broker/uptime', false],
    ['+/x', '$internal/x', false],
    ['$SYS/#', '$SYS/broker', true],
    ['a/b', 'a/b', true],
    ['a/b', 'a/B', false],
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });

  it('strips the $share prefix and refuses bad filters with the filter quoted', () => {
    expect(stripSharePrefix('$share/grp/meters/#')).toBe('meters/#');
    expect(parseTopicFilter('$share/grp/meters/#').shareGroup).toBe('grp');
    expect(stripSharePrefix('meters/#')).toBe('meters/#');
    for (const bad of ['$share/grp', '$share//x', '$share/g+/x', 'a/#/b', 'a/b#', 'a+/b', '']) {
      expect(() => parseTopicFilter(bad), bad).toThrow(/topic filter/);
    }
  });

  it('reads topic levels (region level counted without the $share prefix)', () => {
    expect(topicLevel('meters/north/m1', 0)).toBe('meters');
    expect(topicLevel('meters/north/m1', 1)).toBe('north');
    expect(topicLevel('meters/north/m1', 2)).toBe('m1');
    expect(topicLevel('meters/north/m1', 3)).toBeUndefined();
    expect(topicLevel('meters//m1', 1)).toBeUndefined();
    expect(regionFromTopic('site/a/meters/east/7', 3)).toBe('east');
    expect(regionFromTopic('site/a', undefined)).toBeUndefined();
  });

  it('builds DR command and ack topics; values cannot add levels or wildcards', () => {
    expect(commandTopicFilter('ems/{site}/dr/command')).toBe('ems/+/dr/command');
    expect(commandTopicFilter('ems/{site}/dr/command', { site: 's1' })).toBe('ems/s1/dr/command');
    expect(ackTopicFor('ems/{site}/dr/ack/{command_id}', { site: 's1', command_id: 'c-42' })).toBe('ems/s1/dr/ack/c-42');
    expect(() => ackTopicFor('ems/dr/ack/{command_id}', { command_id: 'x/y' })).toThrow(/contains/);
    expect(() => ackTopicFor('ems/dr/ack/{command_id}', { command_id: '#' })).toThrow(/contains/);
    expect(() => formatTopic('ems/{zone}', {})).toThrow(/no value for \{zone\}/);
    expect(() => formatTopic('ems/+', {})).toThrow(/not a valid topic/);
  });
});
