// kernel/sys.c: prctl(PR_MCE_KILL / PR_MCE_KILL_GET), per thread.
import { EINVAL } from '../errno.js';
import { PF_MCE_EARLY, PF_MCE_PROCESS, type Task } from '../sched.js';

export const PR_MCE_KILL = 33;
export const PR_MCE_KILL_GET = 34;
export const PR_MCE_KILL_CLEAR = 0;
export const PR_MCE_KILL_SET = 1;
export const PR_MCE_KILL_LATE = 0;
export const PR_MCE_KILL_EARLY = 1;
export const PR_MCE_KILL_DEFAULT = 2;

export function prctl(t: Task, option: number, arg2 = 0, arg3 = 0, arg4 = 0, arg5 = 0): number {
  if (option === PR_MCE_KILL) {
    if (arg4 | arg5) return -EINVAL;
    if (arg2 === PR_MCE_KILL_CLEAR) {
      if (arg3 !== 0) return -EINVAL;
      // Quirk since 2.6.32: PF_MCE_EARLY is left as it was.
      t.flags &= ~PF_MCE_PROCESS;
      return 0;
    }
    if (arg2 === PR_MCE_KILL_SET) {
      t.flags |= PF_MCE_PROCESS;
      if (arg3 === PR_MCE_KILL_EARLY) t.flags |= PF_MCE_EARLY;
      else if (arg3 === PR_MCE_KILL_LATE) t.flags &= ~PF_MCE_EARLY;
      else if (arg3 === PR_MCE_KILL_DEFAULT) t.flags &= ~(PF_MCE_EARLY | PF_MCE_PROCESS);
      else return -EINVAL; // quirk: PF_MCE_PROCESS stays set
      return 0;
    }
    return -EINVAL;
  }
  if (option === PR_MCE_KILL_GET) {
    if (arg2 | arg3 | arg4 | arg5) return -EINVAL;
    if (t.flags & PF_MCE_PROCESS) return t.flags & PF_MCE_EARLY ? PR_MCE_KILL_EARLY : PR_MCE_KILL_LATE;
    return PR_MCE_KILL_DEFAULT;
  }
  return -EINVAL;
}
