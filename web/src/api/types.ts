// The shapes of the API answers the app reads (SPEC §9 and the services' routers). Only what the app
// uses is typed; anything else the API adds is ignored.

export interface TokenUser {
  id: string;
  email: string | null;
  roles: string[];
}

export interface TokenResponse {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  user: TokenUser;
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export interface ConsentRecord {
  consent_id: string;
  user_id: string;
  policy_version: string;
  scopes: string[];
  granted_at: string;
  revoked_at: string | null;
  status: "granted" | "revoked";
}

export interface ConsentStatus {
  user_id: string;
  current: ConsentRecord | null;
  history: ConsentRecord[];
}

export interface ErasureAccepted {
  user_id: string;
  status: string;
  requested_at: string;
  consent_revoked: boolean;
  next: string;
}

export interface ProfileView {
  user_id: string;
  created_at: string;
  consent: ConsentRecord | null;
  uploads: number;
  latest_upload: { upload_id: string; status: string; created_at: string } | null;
}

export interface UploadAccepted {
  upload_id: string;
  status: string; // "received" (parsed by the worker next) or, from older APIs, "ingested"
  size_bytes?: number;
  user_ids: string[];
  counts: Record<string, number>;
  notes: string[];
}

export type Stage = "received" | "ingested" | "analyzed" | "recommended" | "failed";

export interface UploadView {
  upload_id: string;
  status: Stage;
  error: { code?: string; message?: string; details?: unknown; [key: string]: unknown } | null;
  users: { user_id: string; stage: Stage; reason: string | null }[];
  counts: Record<string, number>;
  notes: string[];
  as_of: string | null;
  size_bytes: number;
  created_at: string;
  updated_at: string;
}

export type Window = "30d" | "180d";

export interface Card {
  account_id: string;
  name: string | null;
  mask: string | null;
  balance: number;
  limit: number | null;
  utilization: number | null;
  flags: string[];
  minimum_payment_only: boolean;
  overdue: boolean;
  interest_charges: number;
  apr: number | null;
  minimum_payment: number | null;
}

export interface RecurringMerchant {
  merchant: string;
  cadence: string;
  typical_amount: number;
  count: number;
  monthly_amount: number;
  last_date: string;
  is_active: boolean;
}

export interface Stream {
  stream_id: string;
  merchant_name: string;
  first_date: string;
  last_date: string;
  predicted_next_date: string | null;
  frequency: string;
  average_amount: number;
  direction: "inflow" | "outflow";
  count: number;
}

export interface Signals {
  credit?: {
    max_utilization: number | null;
    card_count: number;
    flag_30: boolean;
    flag_50: boolean;
    flag_80: boolean;
    interest_charges: number;
    minimum_payment_only: boolean;
    overdue: boolean;
    cards?: Card[];
  };
  subscriptions?: {
    recurring_merchant_count: number;
    monthly_recurring_spend: number;
    subscription_share: number | null;
    recurring_merchants?: RecurringMerchant[];
    streams?: Stream[];
  };
  savings?: {
    balance: number | null;
    net_inflow: number | null;
    net_inflow_monthly: number | null;
    growth_rate: number | null;
    emergency_fund_months: number | null;
  };
  income?: {
    pay_frequency: string | null;
    pay_count: number | null;
    median_pay_gap_days: number | null;
    cash_flow_buffer_months: number | null;
    checking_balance: number | null;
    income_total: number | null;
    variability: number | null;
  };
  cash_flow?: {
    income: number | null;
    spending: number | null;
    monthly_spending: number | null;
    net: number | null;
    overdraft_fee_count: number | null;
    top_categories?: { category: string; amount: number }[];
  };
}

export interface SignalsView {
  user_id: string;
  window: Window;
  as_of: string;
  upload_id: string | null;
  computed_at: string;
  signals: Signals;
}

export interface PersonaAssignment {
  primary: string;
  matched: { id: string; criteria?: string[] }[];
  rule_set_version: string;
  as_of: string;
  assigned_at: string;
}

export interface PersonaView {
  user_id: string;
  current: Partial<Record<Window, PersonaAssignment>>;
  history: {
    window: Window;
    persona: string;
    previous: string | null;
    rule_set_version: string;
    as_of: string;
    assigned_at: string;
  }[];
  next_cursor: string | null;
}

export interface Recommendation {
  id: string;
  kind: "education" | "offer" | string;
  title: string;
  body: string;
  rationale: string;
  disclosure: string;
  status: string;
  persona: string;
  details: Record<string, unknown>;
  created_at: string;
}

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

export type FeedbackKind = "helpful" | "not_helpful" | "dismissed" | "saved";

export type ReviewStatus = "pending" | "approved" | "rejected" | "flagged" | "overridden";

export interface ReviewItem {
  recommendation_id: string;
  user_id: string;
  upload_id: string | null;
  persona: string;
  kind: string;
  title: string;
  body: string;
  rationale: string;
  disclosure: string;
  catalog_item_id: string;
  catalog_version: string;
  rank: number;
  guardrails: Record<string, boolean>;
  guardrails_passed: boolean;
  generator: string;
  fell_back_to_template: boolean;
  priority: number;
  status: ReviewStatus | string;
  flagged: boolean;
  created_at: string;
  decided_by: string | null;
  decided_at: string | null;
  reason: string | null;
  facts?: CitableFact[];
  alternatives?: Alternative[];
  override?: OverrideText | null;
}

/** A figure a recommendation's text may cite (what an edited text is grounded against). */
export interface CitableFact {
  key: string;
  unit: "usd" | "percent" | "days" | "months" | "count" | "date" | "mask" | "text" | string;
  value: number | string;
  display: string;
  untrusted?: boolean;
}

/** Another catalog item an operator may put in a recommendation's place. */
export interface Alternative {
  catalog_item_id: string;
  catalog_version: string;
  title: string;
  body: string;
  rationale: string;
  disclosure: string;
}

export interface OverrideText {
  title: string;
  body: string;
  rationale: string;
  disclosure: string;
  catalog_item_id: string;
  catalog_version: string;
  source: "edited" | "catalog_item" | string;
}

export interface EditedText {
  title: string;
  body: string;
  rationale: string;
}

/** The guardrail report of an override (operator's check, or a refused save's details). */
export interface OverrideReport {
  passed: boolean;
  reasons: string[];
  source: "edited" | "catalog_item" | string;
  tone: { passed: boolean; hits: { field?: string; rule: string; match: string }[] };
  grounding: {
    passed: boolean;
    checked_by: "operator" | "recommender" | string;
    claims: { field?: string; text: string; unit: string; value: unknown; fact: string | null }[];
    unmatched: string[];
  };
  disclosure: { passed: boolean };
  length: { passed: boolean; limits: Record<string, [number, number]>; [field: string]: unknown };
}

export interface OverrideCheckResult {
  recommendation_id: string;
  passed: boolean;
  report: OverrideReport;
}

export interface OverrideResult {
  decision: "overridden";
  item: ReviewItem;
  report: OverrideReport;
}

export type ReviewSort = "date" | "priority" | "user";

export interface ReviewPage extends Page<ReviewItem> {
  counts: Record<string, number>;
}

export interface DecisionResult {
  decision: string;
  items: ReviewItem[];
}

export interface AuditEntry {
  seq: number | null;
  operator_id: string;
  action: string;
  recommendation_id: string;
  user_id: string;
  before_status: string;
  after_status: string;
  reason: string | null;
  at: string;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
}

// -- operator: one user --------------------------------------------------------------------------------

export interface WindowSignals {
  window: string;
  as_of: string;
  rule_set_version: string;
  upload_id: string | null;
  assigned_at: string;
  signals: Signals;
}

export interface PersonaRecord {
  window: string;
  persona: string;
  matched: string[];
  rule_set_version: string;
  as_of: string;
  upload_id: string | null;
  reason: string;
  assigned_at: string;
}

export interface UserRecommendation {
  recommendation_id: string;
  kind: string;
  persona: string;
  title: string;
  catalog_item_id: string;
  catalog_version: string;
  rank: number;
  priority: number;
  guardrails_passed: boolean;
  fell_back_to_template: boolean;
  status: string;
  flagged: boolean;
  decided_by: string | null;
  decided_at: string | null;
  reason: string | null;
  override: OverrideText | null;
  created_at: string;
}

export interface UserDetail {
  user_id: string;
  signals: Record<string, WindowSignals | null>;
  personas: Record<string, string>;
  persona_history: PersonaRecord[];
  persona_history_truncated: boolean;
  recommendations: UserRecommendation[];
  recommendations_truncated: boolean;
  counts: Record<string, number>;
}

/** The verification of a user's decision-trace hash chains. */
export interface ChainReport {
  ok: boolean;
  checked: number;
  broken_at: number | null;
  reason: string | null;
  chain_id?: string | null;
  trace_id?: string | null;
  chains?: { chain_id: string; ok: boolean; checked: number; broken_at: number | null; reason: string | null }[];
}

export type Trace = Record<string, unknown> & {
  recommendation_id?: string;
  persona?: { rule_set_version?: string; primary?: string; [key: string]: unknown };
  catalog?: { version?: string; item_id?: string; kind?: string };
  selection?: { rank?: number; score?: number; reasons?: unknown };
  output?: { title?: string; rationale?: string };
  guardrails?: Record<string, unknown>;
  generator?: string | { used?: string; [key: string]: unknown };
  operator_actions?: Record<string, unknown>[];
  input?: { upload_id?: string | null; as_of?: string | null };
};

export interface TracePage {
  items: Trace[];
  chain: ChainReport;
  next_cursor: string | null;
}

export interface TraceCheck {
  trace: Trace;
  chain: ChainReport;
  replay: { matches: boolean; differences: string[] };
}

// -- admin --------------------------------------------------------------------------------------------

export interface RuleSetListed {
  version: string;
  source: string;
  active: boolean;
  activated_at?: string | null;
}

export interface RuleSetDetail {
  version: string;
  source: string;
  active: boolean;
  packaged: boolean;
  activated_at: string | null;
  document: unknown;
  rule_set?: Record<string, unknown>;
  source_text: string | null;
}

export interface DeadLetterMessage {
  message_id: string;
  event_type: string | null;
  event_id: string | null;
  error: string | null;
  receive_count: number | null;
  sent_at: string | null;
  correlation_id?: string | null;
}

export interface DeadLetterQueue {
  service: string;
  queue: string;
  dlq: string;
  depth: number;
  messages: DeadLetterMessage[];
}

// -- sign-in ------------------------------------------------------------------------------------------

export interface CodeSent {
  phone: string;
  expires_in: number;
}
