// Types of the corod Node.js client (index.js).
import { EventEmitter } from 'events';

export type Id = number | bigint; // numbers up to 2^53, BigInt beyond: never rounded
export type Record = { id: Id; kind: string; name: string | null; group: string; state: string; owner_uid: number;
  created_at: number | null; started_at: number | null; finished_at: number | null; attempts: number;
  command?: string; argv?: (string | Uint8Array)[]; result?: unknown; error?: { code: string; message: string; [k: string]: unknown };
  waiting?: { reason: string; [k: string]: unknown }; restarted_from?: Id; slurm?: { job: Id; nodes: string } };
export type Spec = { kind: string; args?: object; name?: string; group?: string; priority?: number; after?: (Id | Task)[];
  delay?: number; timeout?: number; retries?: number; retry_delay?: number; shield?: boolean };
export type SpecOptions = Omit<Spec, 'kind' | 'args'>;
export type ExecOptions = SpecOptions & { env?: { [k: string]: string }; cwd?: string; stdin?: string | Uint8Array;
  stdin_pipe?: boolean; grace?: number; output_limit?: number; umask?: number; rlimits?: object; memory_max?: number;
  pids_max?: number; cpu_weight?: number; cpu_quota?: number;
  slurm?: { cpus?: number; memory?: number; time?: number } };
export type SlurmSettings = { partition?: string; account?: string; qos?: string; cpus?: number; memory?: number;
  time?: number; args?: string[]; conf?: string };
type TaskLike = Id | Task;

export class CorodError extends Error { code: string; details: { [k: string]: unknown } }
export class BadRequest extends CorodError {}
export class UnknownMethod extends CorodError {}
export class NotFound extends CorodError {}
export class PermissionDenied extends CorodError {}
export class TooLarge extends CorodError {}
export class QuotaExceeded extends CorodError {}
export class InvalidState extends CorodError {}
export class ShuttingDown extends CorodError {}
export class Internal extends CorodError {}
export class Unavailable extends CorodError {}
export class ConnectionLost extends CorodError {}
export class TaskFailed extends CorodError { record: Record }
export class TaskCancelled extends TaskFailed {}

export class Task extends EventEmitter {
  client: Client; id: Id; record: Record | null;
  result(): Promise<unknown>;
  onDone(fn: (t: Task) => void): this;
  cancel(message?: string): Promise<boolean>;
  get(): Promise<Record>;
}

export class Client extends EventEmitter {
  static connect(socketPath?: string): Promise<Client>;
  close(): void;
  request(method: string, params?: object): Promise<any>;
  call(method: string, params?: object): Promise<any>;
  task(id: Id): Task;
  submit(spec: Spec): Promise<Task>;
  submitMany(specs: Spec[]): Promise<Task[]>;
  submitExec(argv: (string | Uint8Array)[], opts?: ExecOptions): Promise<Task>;
  sleep(seconds: number, result?: unknown, opts?: SpecOptions): Promise<Task>;
  gather(tasks: TaskLike[], opts?: SpecOptions & { return_exceptions?: boolean }): Promise<Task>;
  hello(client?: string): Promise<{ protocol: number; server: string; version: string; pid: number; cgroups: object;
    executors: { [name: string]: { available: boolean; why?: string } } }>;
  cancel(t: TaskLike, message?: string): Promise<boolean>;
  get(t: TaskLike): Promise<Record>;
  list(filters?: object): AsyncGenerator<Record>;
  wait(tasks: TaskLike[], opts?: { mode?: string; timeout?: number }): Promise<{ done: Record[]; pending: Id[] }>;
  watch(tasks?: TaskLike[]): AsyncGenerator<Record>;
  subscribe(tasks: TaskLike[] | null, handler: (r: Record) => void): Promise<number>;
  unsubscribe(sub: number): Promise<void>;
  output(t: TaskLike, opts?: { stream?: 'stdout' | 'stderr'; offset?: number; max?: number; wait?: number }):
    Promise<{ data: Uint8Array; next: number; eof: boolean }>;
  follow(t: TaskLike, stream?: 'stdout' | 'stderr'): AsyncGenerator<Buffer>;
  send(t: TaskLike, data?: string | Uint8Array, eof?: boolean): Promise<number>;
  signal(t: TaskLike, sig: number | string): Promise<void>;
  edit(t: TaskLike, changes: { name?: string; group?: string; priority?: number; delay?: number }): Promise<Record>;
  spec(t: TaskLike): Promise<Spec>;
  setGroup(name: string, settings?: { parallel?: number; paused?: boolean; users?: number[]; create?: boolean;
    executor?: 'local' | 'slurm'; slurm?: SlurmSettings }): Promise<void>;
  removeGroup(name: string): Promise<void>;
  groups(): Promise<object[]>;
  clean(filters?: object): Promise<number>;
  restart(tasks?: TaskLike[] | null, filters?: object): Promise<Task[]>;
}

export const SYSTEM_SOCKET: string;
export function defaultSocket(): string;
export function spec(kind: string, args?: object, opts?: SpecOptions): Spec;
export function execSpec(argv: (string | Uint8Array)[], opts?: ExecOptions): Spec;
export function exactInts<T>(v: T): T;
export function wireInts<T>(v: T): T;
