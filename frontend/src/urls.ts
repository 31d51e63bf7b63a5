/** A page's URL from the template the page gives: "/workflows/0/edit/" -> "/workflows/12/edit/" */
export function urlFor(template: string, id: number): string {
  return template.replace("/0/", `/${id}/`);
}
