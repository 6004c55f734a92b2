/**
 * The change feeds' message reading, without a server: PostgreSQL notifications
 * (services/location/sql-changes.ts) and MongoDB change-stream events
 * (services/location/mongo-changes.ts), which this machine's FerretDB cannot produce.
 */
import type { ChangeStreamDocument } from 'mongodb';
import type { ChangedAor } from '../../../services/location/changes';
import { changeOfEvent } from '../../../services/location/mongo-changes';
import { parseNotification } from '../../../services/location/sql-changes';

describe('PostgreSQL location notifications', () => {
  test('names the AoRs (domain null when absent); skips the own ones', () => {
    const payload = JSON.stringify({
      o: 'sipflow/1/aa',
      a: [
        ['alice', null],
        ['bob', 'example.net'],
      ],
    });
    expect(parseNotification(payload, 'sipflow/2/bb')).toEqual({
      aors: [
        { username: 'alice', domain: null },
        { username: 'bob', domain: 'example.net' },
      ],
    });
    expect(parseNotification(payload, 'sipflow/1/aa')).toBeNull();
  });

  test('"*" (too many AoRs for one payload), unreadable or odd payloads: everything may have changed', () => {
    expect(parseNotification(JSON.stringify({ o: 'x', a: '*' }), 'y')).toEqual({ all: true });
    expect(parseNotification('not json', 'y')).toEqual({ all: true });
    expect(parseNotification(JSON.stringify({ o: 'x', a: [[42]] }), 'y')).toEqual({ all: true });
    expect(parseNotification(JSON.stringify({ a: [['alice']] }), null)).toEqual({ aors: [{ username: 'alice', domain: null }] });
  });
});

describe('MongoDB change-stream events', () => {
  const ev = (e: Record<string, unknown>) => e as unknown as ChangeStreamDocument;

  test('insert, update and delete name the AoR; a delete is known by the _id seen before', () => {
    const ids = new Map<string, ChangedAor>();
    expect(changeOfEvent(ev({ operationType: 'insert', documentKey: { _id: 'x1' }, fullDocument: { username: 'alice', contact: 'sip:a@h' } }), ids)).toEqual({
      aors: [{ username: 'alice', domain: null }],
    });
    expect(changeOfEvent(ev({ operationType: 'update', documentKey: { _id: 'x1' }, fullDocument: { username: 'alice', domain: 'd.net' } }), ids)).toEqual({
      aors: [
        { username: 'alice', domain: null },
        { username: 'alice', domain: 'd.net' },
      ],
    });
    expect(changeOfEvent(ev({ operationType: 'delete', documentKey: { _id: 'x1' } }), ids)).toEqual({ aors: [{ username: 'alice', domain: 'd.net' }] });
    expect(ids.size).toBe(0);
  });

  test('an unknown delete, an update whose document is gone, a drop: everything may have changed', () => {
    const ids = new Map<string, ChangedAor>();
    expect(changeOfEvent(ev({ operationType: 'delete', documentKey: { _id: 'nope' } }), ids)).toEqual({ all: true });
    expect(changeOfEvent(ev({ operationType: 'update', documentKey: { _id: 'gone' }, fullDocument: null }), ids)).toEqual({ all: true });
    expect(changeOfEvent(ev({ operationType: 'drop' }), ids)).toEqual({ all: true });
    expect(changeOfEvent(ev({ operationType: 'invalidate' }), ids)).toEqual({ all: true });
  });
});
