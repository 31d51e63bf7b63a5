import { createContext, useContext } from "react";
import type { StepTypeDef } from "./types";

/** Step types by name, for nodes to draw their ports. */
export const StepTypesContext = createContext<Map<string, StepTypeDef>>(new Map());

export function useStepTypes(): Map<string, StepTypeDef> {
  return useContext(StepTypesContext);
}
