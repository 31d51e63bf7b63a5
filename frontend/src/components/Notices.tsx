import type { Notice, Problem } from "../hooks/useNotices";

interface Props {
  notice: Notice | null;
  onDismissNotice: () => void;
  problem: Problem | null;
  onDismissProblem: () => void;
}

export function Notices({ notice, onDismissNotice, problem, onDismissProblem }: Props) {
  return (
    <>
      {notice && (
        <div className={`wf-notice ${notice.kind}`} role="status" onClick={onDismissNotice}>
          {notice.text}
        </div>
      )}
      {problem && (
        <div className="alert alert-error wf-problem" role="alert" data-testid="problem">
          <button type="button" className="btn-link wf-close" onClick={onDismissProblem} aria-label="Dismiss">
            ×
          </button>
          <strong>{problem.detail}</strong>
          {problem.errors.length > 0 && (
            <ul>
              {problem.errors.map((e, i) => (
                <li key={i}>{e.message}</li>
              ))}
            </ul>
          )}
        </div>
      )}
    </>
  );
}
