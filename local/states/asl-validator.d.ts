declare module "asl-validator" {
  interface ValidationError {
    "Error code": string;
    Message: string;
  }
  interface ValidationResult {
    isValid: boolean;
    errors: ValidationError[];
    errorsText(separator?: string): string;
  }
  function validator(definition: unknown, opts?: { checkPaths?: boolean; checkArn?: boolean }): ValidationResult;
  export = validator;
}
